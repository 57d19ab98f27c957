package exchange

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/storage"
)

// ClientConfig registers one client application (config `clients:`).
// Confidential clients (a Next.js server, a backend) hold Secret; public
// clients (mobile apps, SPAs) cannot keep one and send only their ID.
type ClientConfig struct {
	ID     string
	Secret string // empty for a public client
	Public bool
	// Providers, when not empty, are the only providers the client may use.
	Providers []string
	// VerifiesNonce: a confidential client that checks the nonce of its
	// own sign-in flows (Auth.js with checks: ["nonce"]) and cannot pass
	// it on. Its authenticated requests may then present a nonce-bearing
	// id_token without the nonce (docs/security.md says why that is safe).
	VerifiesNonce bool
}

// registeredClient keeps only a digest of the secret: the plaintext is
// not kept in memory longer than configuration takes, and nothing can print it.
type registeredClient struct {
	id        string
	digest    [sha256.Size]byte
	public    bool
	providers []string
	// verifiesNonce: ClientConfig.VerifiesNonce, never for a public client.
	verifiesNonce bool
}

// AuthenticatedClient is a client that proved who it is (or, for a public
// client, named itself). Nil means no clients are configured.
type AuthenticatedClient struct {
	ID     string
	Public bool
}

func newClientRegistry(cfgs []ClientConfig) (map[string]registeredClient, error) {
	if len(cfgs) == 0 {
		return nil, nil
	}
	m := make(map[string]registeredClient, len(cfgs))
	for _, c := range cfgs {
		if c.ID == "" {
			return nil, fmt.Errorf("a client has no id")
		}
		if _, dup := m[c.ID]; dup {
			return nil, fmt.Errorf("client %q is registered twice", c.ID)
		}
		if c.Public != (c.Secret == "") {
			return nil, fmt.Errorf("client %q: a client is either public or has a secret", c.ID)
		}
		if c.Public && c.VerifiesNonce {
			return nil, fmt.Errorf("client %q: a public client cannot attest the nonce: it has no secret to prove the request is its own", c.ID)
		}
		rc := registeredClient{id: c.ID, public: c.Public, providers: slices.Clone(c.Providers), verifiesNonce: c.VerifiesNonce}
		if !c.Public {
			rc.digest = sha256.Sum256([]byte(c.Secret))
		}
		m[c.ID] = rc
	}
	return m, nil
}

// unknownDigest is compared against for an unknown client id, so that
// path costs what a wrong secret costs.
var unknownDigest [sha256.Size]byte

// ClientsConfigured reports whether client authentication is in force.
func (s *Service) ClientsConfigured() bool { return len(s.clients) > 0 }

// AuthenticateClient checks the credentials a request presented. With no
// clients configured it returns (nil, nil): every caller is anonymous, as
// before clients existed. Otherwise a confidential client must present its
// secret and a public client must present none.
func (s *Service) AuthenticateClient(id, secret string) (*AuthenticatedClient, error) {
	if len(s.clients) == 0 {
		return nil, nil
	}
	if id == "" {
		return nil, newError(KindInvalidClient, ReasonMissingClient,
			"client authentication is required: HTTP Basic, or client_id (and client_secret) in the body", nil)
	}
	c, ok := s.clients[id]
	if !ok {
		// An unknown id answers exactly as a confidential client with a
		// wrong or missing secret would, digest included, so the answer
		// does not tell which client ids exist.
		if secret == "" {
			return nil, newError(KindInvalidClient, ReasonMissingSecret, "this client must authenticate with its secret", nil)
		}
		got := sha256.Sum256([]byte(secret))
		_ = subtle.ConstantTimeCompare(got[:], unknownDigest[:])
		return nil, newError(KindInvalidClient, ReasonInvalidSecret, "client authentication failed", nil)
	}
	if c.public {
		if secret != "" {
			return nil, newError(KindInvalidClient, ReasonUnexpectedSecret,
				"this client is public and has no secret; send only client_id", nil)
		}
		return &AuthenticatedClient{ID: c.id, Public: true}, nil
	}
	if secret == "" {
		return nil, newError(KindInvalidClient, ReasonMissingSecret, "this client must authenticate with its secret", nil)
	}
	// Comparing digests makes the comparison constant-time in the length too.
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(got[:], c.digest[:]) != 1 {
		return nil, newError(KindInvalidClient, ReasonInvalidSecret, "client authentication failed", nil)
	}
	return &AuthenticatedClient{ID: c.id}, nil
}

// clientAllows refuses a provider outside the client's provider list.
// clientID is empty when no clients are configured.
func (s *Service) clientAllows(clientID, provider string) error {
	if clientID == "" {
		return nil
	}
	c, ok := s.clients[clientID]
	if !ok || len(c.providers) == 0 || slices.Contains(c.providers, provider) {
		return nil
	}
	return newError(KindUnauthorizedClient, ReasonProviderNotAllowed, "this client may not use that provider", nil)
}

// attestNonce returns c as the verifier must see it for a request of
// clientID, the authenticated client's id (empty without clients): a
// nonce-bearing id_token without the request's nonce is accepted only for
// a confidential client registered as checking the nonce itself. It
// overwrites whatever the caller set, so only the registry decides.
func (s *Service) attestNonce(c providers.Credential, clientID string) providers.Credential {
	rc, ok := s.clients[clientID]
	c.NonceCheckedByClient = ok && !rc.public && rc.verifiesNonce
	return c
}

// nonceAttested is the audit event for a credential whose nonce the
// client attested: which client, and what for (exchange or link).
func nonceAttested(id providers.Identity, clientID, userID, what string) storage.AuditEvent {
	return storage.AuditEvent{Type: EventNonceAttested, UserID: userID, Provider: id.Provider,
		Detail: "nonce checked by client " + clientID + " (" + what + ")"}
}
