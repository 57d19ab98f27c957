package exchange

import (
	"strings"
	"testing"

	"github.com/authex/authex/providers"
)

// TestClientRegistryVerifiesNonce: the registry refuses verifies_nonce on a
// public client even when configuration validation is bypassed, and
// attestNonce sets the flag only for the registered confidential client,
// overwriting whatever the caller had set.
func TestClientRegistryVerifiesNonce(t *testing.T) {
	_, err := newClientRegistry([]ClientConfig{{ID: "ios", Public: true, VerifiesNonce: true}})
	if err == nil || !strings.Contains(err.Error(), "public client cannot attest the nonce") {
		t.Fatalf("public client with VerifiesNonce: %v", err)
	}
	clients, err := newClientRegistry([]ClientConfig{
		{ID: "nextjs", Secret: "nextjs-secret-0123456789", VerifiesNonce: true},
		{ID: "backend", Secret: "backend-secret-0123456789"},
		{ID: "ios", Public: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{clients: clients}
	for id, want := range map[string]bool{"nextjs": true, "backend": false, "ios": false, "": false, "unknown": false} {
		got := s.attestNonce(providers.Credential{IDToken: "x", NonceCheckedByClient: true}, id)
		if got.NonceCheckedByClient != want {
			t.Errorf("client %q: NonceCheckedByClient %v, want %v", id, got.NonceCheckedByClient, want)
		}
	}
	none := &Service{}
	if none.attestNonce(providers.Credential{NonceCheckedByClient: true}, "nextjs").NonceCheckedByClient {
		t.Error("without clients configured a nonce was attested")
	}
}
