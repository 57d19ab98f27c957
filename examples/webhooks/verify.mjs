import crypto from "node:crypto";

// verifyWebhook checks a Standard Webhooks delivery from authex.
// rawBody: the request body exactly as received (a Buffer or string).
export function verifyWebhook(secret, headers, rawBody, toleranceSeconds = 300) {
  const id = headers["webhook-id"], ts = headers["webhook-timestamp"], sigs = headers["webhook-signature"];
  if (!id || !ts || !sigs) throw new Error("missing webhook headers");
  const now = Math.floor(Date.now() / 1000);
  if (!/^\d+$/.test(ts) || Math.abs(now - Number(ts)) > toleranceSeconds) throw new Error("timestamp out of tolerance");
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = Buffer.from(
    "v1," + crypto.createHmac("sha256", key).update(`${id}.${ts}.`).update(rawBody).digest("base64"));
  for (const sig of sigs.split(" ")) {
    const got = Buffer.from(sig);
    if (got.length === expected.length && crypto.timingSafeEqual(got, expected)) return JSON.parse(rawBody.toString());
  }
  throw new Error("no matching signature");
}
