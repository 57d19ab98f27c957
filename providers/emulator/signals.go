package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// The emulator as a security event transmitter: POST {issuer}/signal signs
// a Security Event Token (RFC 8417) about one of its subjects and pushes
// it (RFC 8935) to the configured receiver, so the signals flow of authex
// runs locally:
//
//	curl -s {issuer}/signal -d '{"event":"sessions-revoked","email":"ada@example.com"}'
//
// The receiver is configured (Config.SignalReceiver), never taken from the
// request, so the endpoint cannot be aimed elsewhere.

// riscPrefix is the namespace of the RISC event types; a short event name
// ("sessions-revoked") is taken in it.
const riscPrefix = "https://schemas.openid.net/secevent/risc/event-type/"

// SignSET signs a SET with one event of type eventType (a URI, or a RISC
// short name) about subject sub, addressed to the first client id.
func (e *Emulator) SignSET(eventType, sub string) (string, error) {
	if sub == "" {
		return "", errors.New("a SET needs a subject")
	}
	if !strings.Contains(eventType, "/") {
		eventType = riscPrefix + eventType
	}
	claims := map[string]any{
		"iss": e.issuer, "aud": e.clientIDs[0], "iat": e.now().Unix(), "jti": rand.Text(),
		"events": map[string]any{eventType: map[string]any{
			"subject": map[string]any{"subject_type": "iss-sub", "iss": e.issuer, "sub": sub},
		}},
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: e.key, KeyID: e.kid}},
		(&jose.SignerOptions{}).WithType("secevent+jwt"))
	if err != nil {
		return "", err
	}
	return josejwt.Signed(signer).Claims(claims).Serialize()
}

// handleSignal signs {"event": ..., "email" or "sub": ...} and pushes the
// SET to the receiver; it answers the SET and the receiver's status and
// body.
func (e *Emulator) handleSignal(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Event string `json:"event"`
		Email string `json:"email"`
		Sub   string `json:"sub"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Event == "" || (req.Email == "") == (req.Sub == "") {
		oauthError(w, http.StatusBadRequest, "invalid_request", `body must be {"event": "sessions-revoked", "email": "..."} (or "sub" instead of "email")`)
		return
	}
	sub := req.Sub
	if sub == "" {
		sub = Subject(req.Email)
	}
	set, err := e.SignSET(req.Event, sub)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	out := map[string]any{"set": set}
	if e.receiver == "" {
		writeJSON(w, http.StatusOK, out)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	preq, err := http.NewRequestWithContext(ctx, http.MethodPost, e.receiver, bytes.NewReader([]byte(set)))
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "bad receiver URL")
		return
	}
	preq.Header.Set("Content-Type", "application/secevent+jwt")
	preq.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(preq)
	if err != nil {
		oauthError(w, http.StatusBadGateway, "receiver_unreachable", "the receiver did not answer")
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	out["receiver"], out["status"], out["response"] = e.receiver, res.StatusCode, string(body)
	writeJSON(w, http.StatusOK, out)
}
