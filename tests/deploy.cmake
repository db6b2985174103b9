# Packaging and deployment: the embedded stack as a new user meets it, the
# container image and compose file, `cmake --install` into a temporary prefix.

# `vigil run` without -c away from a checkout, and the logged kcat line pasted as is.
add_test(NAME test_deploy_embedded
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_deploy_embedded.sh
                 $<TARGET_FILE:vigil> ${PROJECT_SOURCE_DIR})
set_tests_properties(test_deploy_embedded PROPERTIES LABELS integration TIMEOUT 120)

# The Dockerfile's runtime packages against `ldd vigil`, the image's config, docker-compose.yml
# (`docker-compose config -q`: the CLI only, no engine here), deploy/k8s against the image.
add_test(NAME test_deploy_image
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_deploy_image.sh
                 $<TARGET_FILE:vigil> ${PROJECT_SOURCE_DIR})
set_tests_properties(test_deploy_image PROPERTIES LABELS integration TIMEOUT 120)

# `cmake --install` (what `make install` runs) into a temporary prefix: the installed binary,
# config, man page, bash completion and systemd unit (`systemd-analyze verify`).
add_test(NAME test_deploy_install
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_deploy_install.sh
                 ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
set_tests_properties(test_deploy_install PROPERTIES LABELS integration TIMEOUT 120)
