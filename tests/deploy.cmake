# Packaging and deployment: the embedded stack as a new user meets it, the
# container image and compose file, `cmake --install` into a temporary prefix.

# `vigil run` without -c away from a checkout, and the logged kcat line pasted as is.
add_test(NAME test_deploy_embedded
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_deploy_embedded.sh
                 $<TARGET_FILE:vigil> ${PROJECT_SOURCE_DIR})
set_tests_properties(test_deploy_embedded PROPERTIES LABELS integration TIMEOUT 120)
