import base64, hashlib, hmac, json, time

def verify_webhook(secret: str, headers, raw_body: bytes, tolerance: int = 300):
    """Check a Standard Webhooks delivery from authex; return the event."""
    msg_id, ts, sigs = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and ts and sigs):
        raise ValueError("missing webhook headers")
    if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance:
        raise ValueError("timestamp out of tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + raw_body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    if not any(hmac.compare_digest(s, expected) for s in sigs.split(" ")):
        raise ValueError("no matching signature")
    return json.loads(raw_body)
