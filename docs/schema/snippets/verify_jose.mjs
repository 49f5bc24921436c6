// Verify one fleet-agent envelope with jose (npm install jose).
//
//   node verify_jose.mjs AGENT_JWK_FILE < TOKEN_FILE     # prints the payload JSON
import { readFileSync } from "node:fs";
import { compactVerify, importJWK } from "jose";

const TYPE = "fleet-agent-envelope+jws";
const jwk = JSON.parse(readFileSync(process.argv[2], "utf8"));
const token = readFileSync(0, "utf8").trim();

try {
  const key = await importJWK({ kty: "OKP", crv: "Ed25519", x: jwk.x }, "EdDSA");
  const { payload, protectedHeader } = await compactVerify(token, key, {
    algorithms: ["EdDSA", "Ed25519"],
  });
  if (protectedHeader.typ !== TYPE || protectedHeader.kid !== jwk.kid) {
    throw new Error(`not a fleet-agent envelope of key ${jwk.kid}`);
  }
  const body = JSON.parse(new TextDecoder().decode(payload));
  if (body.key_id !== jwk.kid) throw new Error("key_id differs from the header's kid");
  console.log(JSON.stringify(body));
} catch (error) {
  console.error(`rejected: ${error}`);
  process.exit(1);
}
