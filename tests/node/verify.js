// Checks vigil's real webhook requests with the reference packages (issue 6):
//   node verify.js signatures REQUESTS.json SECRET...   every request verifies with every secret
//   node verify.js reject REQUESTS.json SECRET          every request FAILS (wrong secret, tampering)
//   node verify.js schema REQUESTS.json SCHEMA.json     every body is valid against the schema
// REQUESTS.json: [{"headers": {...}, "body": "..."}]. Prints one line; exit 0 when all hold.
"use strict";
const fs = require("fs");
const { Webhook } = require("standardwebhooks");

const [mode, file, ...rest] = process.argv.slice(2);
const reqs = JSON.parse(fs.readFileSync(file, "utf8"));
let bad = 0;

if (mode === "signatures" || mode === "reject") {
  for (const secret of rest) {
    const wh = new Webhook(secret);
    for (const r of reqs) {
      let ok = true;
      try {
        wh.verify(r.body, r.headers);
      } catch (e) {
        ok = false;
        if (mode === "signatures") console.error(`verify failed: ${e.message}`);
      }
      if (ok !== (mode === "signatures")) bad++;
    }
  }
} else if (mode === "schema") {
  const Ajv2020 = require("ajv/dist/2020");
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validate = ajv.compile(JSON.parse(fs.readFileSync(rest[0], "utf8")));
  for (const r of reqs) {
    if (!validate(JSON.parse(r.body))) {
      bad++;
      console.error(JSON.stringify(validate.errors));
    }
  }
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
console.log(`${mode}: ${reqs.length} request(s), ${bad} bad`);
process.exit(bad === 0 && reqs.length > 0 ? 0 : 1);
