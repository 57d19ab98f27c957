package keyring

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/storage"
)

// Supported algorithms for our own tokens.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)

// ValidAlgorithm reports whether alg can sign our tokens.
func ValidAlgorithm(alg string) bool {
	return alg == AlgES256 || alg == AlgEdDSA || alg == AlgRS256
}

type signingKey struct {
	record storage.SigningKey
	signer crypto.Signer
	method jwt.SigningMethod
}

// Ring holds our signing keys as loaded from the store, with the JWKS
// document prepared once per change rather than per request.
//
// A key's times (NotBefore, RetiredAt, ExpiresAt) take effect at those
// instants without a reload: the keyring remembers the next time any of
// them falls due and recomputes the signing key and the JWKS from the keys
// it holds when that time has passed. Reload (run periodically by
// Watch) only picks up keys another instance wrote.
type Ring struct {
	store     storage.Store
	algorithm string
	now       func() time.Time
	// sealer seals and opens the key material in the store (nil: legacy
	// plaintext, tests only). files are the keys read from PEM files
	// (tokens.signing_key_files): never stored, the first signs.
	sealer  *envelope.Sealer
	files   []*signingKey
	linkTTL time.Duration // how long a retired key verifies link_tokens past ExpiresAt

	// reloadMu serialises Reload, which owns parsed: the keys parsed at the
	// last reload by kid, reused while their stored bytes are unchanged, so
	// a reload every second costs a query, not a decryption and a parse.
	reloadMu sync.Mutex
	parsed   map[string]parsedKey

	mu         sync.RWMutex
	all        []*signingKey          // every key read from the store, not yet expired at reload
	keys       map[string]*signingKey // by kid: every key that still verifies something
	published  map[string]bool        // kids in the JWKS: the only keys our access tokens may be signed by
	current    *signingKey            // the key that signs now
	jwks       []byte
	nextChange time.Time // zero: no key time is pending
	macs       *MACRing  // the refresh-token MAC secrets (macs.go)

	// unknownMu and lastUnknown rate-limit the reloads that an unknown kid
	// triggers (see sync.go).
	unknownMu   sync.Mutex
	lastUnknown time.Time
}

// parsedKey is a stored key as parsed at a reload, with the stored bytes
// it came from.
type parsedKey struct {
	raw []byte
	sk  *signingKey
}

// Config is what New needs.
type Config struct {
	Store     storage.Store
	Algorithm string // of the keys Create makes: AlgES256, AlgEdDSA or AlgRS256
	Now       func() time.Time
	// Sealer seals the key material in the store (nil: plaintext, tests only).
	Sealer *envelope.Sealer
	// Files are keys read from PEM files (ParsePEMKey): the first signs,
	// all are published, none is stored.
	Files []PEMKey
	// LinkTokenTTL is how long a retired key keeps verifying link_tokens
	// after it left the JWKS (see verifiesUntil).
	LinkTokenTTL time.Duration
}

// New returns a ring that has loaded nothing yet: call Ensure.
func New(cfg Config) *Ring {
	files := make([]*signingKey, 0, len(cfg.Files))
	for _, pk := range cfg.Files {
		files = append(files, pk.signingKey())
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Ring{store: cfg.Store, algorithm: cfg.Algorithm, now: cfg.Now, sealer: cfg.Sealer, files: files, linkTTL: cfg.LinkTokenTTL}
}

// Ensure loads the keys, creating the first one when the store has none, so
// that tokens signed before a restart still verify after it.
func (k *Ring) Ensure(ctx context.Context) error {
	if err := k.Reload(ctx); err != nil {
		return err
	}
	if len(k.files) > 0 {
		return nil // keys from PEM files: nothing to create
	}
	k.mu.RLock()
	ok, none := k.current != nil, len(k.keys) == 0
	k.mu.RUnlock()
	if ok {
		return nil
	}
	if none {
		return k.bootstrap(ctx)
	}
	if _, err := k.Create(ctx, 0); err != nil {
		return err
	}
	return k.Reload(ctx)
}

// Create generates a key of the configured algorithm that is published at
// once and signs from now+publishDelay, and stores it.
func (k *Ring) Create(ctx context.Context, publishDelay time.Duration) (storage.SigningKey, error) {
	rec, err := k.newRecord(publishDelay)
	if err != nil {
		return storage.SigningKey{}, err
	}
	if err := k.store.CreateSigningKey(ctx, rec); err != nil {
		return storage.SigningKey{}, err
	}
	return rec, nil
}

func (k *Ring) newRecord(publishDelay time.Duration) (storage.SigningKey, error) {
	der, err := generateKey(k.algorithm)
	if err != nil {
		return storage.SigningKey{}, err
	}
	sk, err := parseSigningKey(storage.SigningKey{Algorithm: k.algorithm, PrivateKey: der})
	if err != nil {
		return storage.SigningKey{}, err
	}
	kid, err := thumbprint(sk.signer.Public())
	if err != nil {
		return storage.SigningKey{}, err
	}
	material, err := k.seal(signingKeyAAD(kid), der)
	if err != nil {
		return storage.SigningKey{}, err
	}
	now := k.now().UTC()
	return storage.SigningKey{
		ID:         kid,
		Algorithm:  k.algorithm,
		PrivateKey: material,
		CreatedAt:  now,
		NotBefore:  now.Add(publishDelay),
	}, nil
}

// Reload reads the keys from the store and picks the one that signs: the
// newest whose NotBefore has passed and that is not retired. Several
// instances sharing a store pick the same key because the choice depends on
// the records alone.
func (k *Ring) Reload(ctx context.Context) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	all, parsed := k.files, k.parsed
	if len(k.files) == 0 {
		recs, err := k.store.ListSigningKeys(ctx)
		if err != nil {
			return err
		}
		now := k.now()
		all = make([]*signingKey, 0, len(recs))
		parsed = make(map[string]parsedKey, len(recs))
		for _, rec := range recs {
			if Revoked(rec) || (!rec.ExpiresAt.IsZero() && !now.Before(k.verifiesUntil(rec))) {
				continue
			}
			p, ok := k.parsed[rec.ID]
			if !ok || !bytes.Equal(p.raw, rec.PrivateKey) {
				sk, err := k.openKey(rec)
				if err != nil {
					return fmt.Errorf("signing key %s: %w", rec.ID, err)
				}
				p = parsedKey{raw: rec.PrivateKey, sk: sk}
			}
			parsed[rec.ID] = p
			sk := *p.sk
			sk.record = rec // its times may have changed
			sk.record.PrivateKey = nil
			all = append(all, &sk)
		}
	}
	macs, err := k.loadMACs(ctx)
	if err != nil {
		return err
	}
	k.parsed = parsed
	k.mu.Lock()
	defer k.mu.Unlock()
	k.all, k.macs = all, macs
	return k.recomputeLocked(k.now())
}

// revoked reports whether a key was revoked (RevokeKey): it verifies
// nothing from then on, whatever its other times say.
func Revoked(rec storage.SigningKey) bool { return !rec.RevokedAt.IsZero() }

// verifiesUntil is when a retired key stops verifying our own tokens. It
// leaves the JWKS at ExpiresAt, once every access token it signed has
// expired; a link_token lives longer (Config.LinkTokenTTL), and a user
// redeeming one across a rotation must not be sent back to sign in again.
func (k *Ring) verifiesUntil(rec storage.SigningKey) time.Time { return rec.ExpiresAt.Add(k.linkTTL) }

// recomputeLocked derives the published keys, the signing key, the JWKS
// and the next due time from k.all at now. k.mu must be held for writing.
func (k *Ring) recomputeLocked(now time.Time) error {
	keys := make(map[string]*signingKey, len(k.all))
	pub := make(map[string]bool, len(k.all))
	var current *signingKey
	var published []*signingKey
	var next time.Time
	due := func(t time.Time) {
		if !t.IsZero() && now.Before(t) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, sk := range k.all {
		rec := sk.record
		due(rec.NotBefore)
		due(rec.RetiredAt)
		due(rec.ExpiresAt)
		if !rec.ExpiresAt.IsZero() {
			due(k.verifiesUntil(rec))
			if !now.Before(k.verifiesUntil(rec)) {
				continue
			}
		}
		keys[rec.ID] = sk
		if !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt) {
			continue // still verifies our own link_tokens; no longer published
		}
		pub[rec.ID] = true
		published = append(published, sk)
		signs := !now.Before(rec.NotBefore) && (rec.RetiredAt.IsZero() || now.Before(rec.RetiredAt))
		if signs && (current == nil || rec.CreatedAt.After(current.record.CreatedAt) ||
			(rec.CreatedAt.Equal(current.record.CreatedAt) && rec.ID > current.record.ID)) {
			current = sk
		}
	}
	if len(k.files) > 0 {
		current = k.files[0] // PEM keys: the first signs, always
	}
	jwks, err := buildJWKS(published)
	if err != nil {
		return err
	}
	k.keys, k.published, k.current, k.jwks, k.nextChange = keys, pub, current, jwks, next
	return nil
}

// state runs fn with the keyring's state as of now, recomputing it first
// when a key's time has fallen due since the last computation.
func (k *Ring) state(fn func()) {
	now := k.now()
	k.mu.RLock()
	stale := !k.nextChange.IsZero() && !now.Before(k.nextChange)
	if !stale {
		defer k.mu.RUnlock()
		fn()
		return
	}
	k.mu.RUnlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.nextChange.IsZero() && !now.Before(k.nextChange) {
		// The keys were parsed at reload; building the JWKS cannot fail
		// for them, and if it did the previous state stays.
		_ = k.recomputeLocked(now)
	}
	fn()
}

// JWKS returns the prepared public key set document.
func (k *Ring) JWKS() []byte {
	var out []byte
	k.state(func() { out = k.jwks })
	return out
}

func (k *Ring) signer() (*signingKey, error) {
	var sk *signingKey
	k.state(func() { sk = k.current })
	if sk == nil {
		return nil, errors.New("no signing key is active")
	}
	return sk, nil
}

// SigningKID is the kid of the key that signs now ("" when none does).
func (k *Ring) SigningKID() string {
	sk, err := k.signer()
	if err != nil {
		return ""
	}
	return sk.record.ID
}

// Published reports whether kid is in the JWKS now: the only keys an
// access token may be signed by.
func (k *Ring) Published(kid string) bool {
	_, ok := k.lookup(kid, "")
	return ok
}

// FromFiles reports whether the keys come from PEM files: then authex
// neither rotates nor revokes them.
func (k *Ring) FromFiles() bool { return len(k.files) > 0 }

// Files are the PEM keys' records (kid and algorithm), the signing one first.
func (k *Ring) Files() []storage.SigningKey {
	out := make([]storage.SigningKey, 0, len(k.files))
	for _, f := range k.files {
		out = append(out, f.record)
	}
	return out
}

// typLink was the JWT typ of the former link_token (exchange's tokens.go):
// a retired key still verifies tokens of this typ until verifiesUntil.
const typLink = "link+jwt"

// lookup finds a key that may verify a token of type typ: any key still
// kept for link_tokens, but for every other type only a key in the JWKS,
// so that /v1/me and introspection never accept an access token that APIs
// verifying offline would refuse.
func (k *Ring) lookup(kid, typ string) (*signingKey, bool) {
	var sk *signingKey
	var ok bool
	k.state(func() {
		sk, ok = k.keys[kid]
		if ok && !strings.EqualFold(typ, typLink) {
			ok = k.published[kid]
		}
	})
	return sk, ok
}

// Sign encodes claims as a JWT with the given typ header. Signatures are
// deterministic (RFC 6979 for ECDSA; EdDSA and RSA PKCS#1 v1.5 are by
// nature), so the same claims give the same token: that is what lets the
// refresh reuse grace answer concurrent refreshes with identical pairs
// without storing any token.
func (k *Ring) Sign(typ string, claims jwt.Claims) (string, error) {
	sk, err := k.signer()
	if err != nil {
		return "", err
	}
	// golang-jwt's SignedString, byte for byte (TestSignMatchesGolangJWT),
	// but the header is a struct rather than a map: encoding/json sorts a
	// map's keys through reflection on every token, and this is every
	// exchange's and refresh's signature.
	header, err := json.Marshal(jwtHeader{Alg: sk.method.Alg(), Kid: sk.record.ID, Typ: typ})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	seg := base64.RawURLEncoding.EncodeToString
	signing := seg(header) + "." + seg(payload)
	sig, err := sk.method.Sign(signing, sk.signer)
	if err != nil {
		return "", err
	}
	return signing + "." + seg(sig), nil
}

// jwtHeader is the JOSE header of our tokens, its members in the order
// encoding/json writes a map's (sorted).
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// Keyfunc resolves a token's kid for golang-jwt.
func (k *Ring) Keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	typ, _ := t.Header["typ"].(string)
	sk, ok := k.lookup(kid, typ)
	if !ok && k.reloadForUnknown(kid) {
		sk, ok = k.lookup(kid, typ)
	}
	if !ok {
		return nil, errors.New("unknown key")
	}
	if t.Method.Alg() != sk.method.Alg() {
		return nil, errors.New("algorithm does not match the key")
	}
	return sk.signer.Public(), nil
}

func generateKey(alg string) ([]byte, error) {
	var priv any
	var err error
	switch alg {
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKCS8PrivateKey(priv)
}

func parseSigningKey(rec storage.SigningKey) (*signingKey, error) {
	priv, err := x509.ParsePKCS8PrivateKey(rec.PrivateKey)
	if err != nil {
		return nil, err
	}
	sk := &signingKey{record: rec}
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		if rec.Algorithm != AlgES256 {
			return nil, fmt.Errorf("ECDSA key stored as %s", rec.Algorithm)
		}
		sk.signer, sk.method = p, deterministicES256{}
	case ed25519.PrivateKey:
		sk.signer, sk.method = p, jwt.SigningMethodEdDSA
	case *rsa.PrivateKey:
		sk.signer, sk.method = p, jwt.SigningMethodRS256
	default:
		return nil, fmt.Errorf("unsupported key type %T", priv)
	}
	return sk, nil
}

func buildJWKS(keys []*signingKey) ([]byte, error) {
	// Stable: PEM keys share a zero CreatedAt and keep the config's order.
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].record.CreatedAt.After(keys[j].record.CreatedAt) })
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, sk := range keys {
		pub := sk.signer.Public()
		if err := supportedPublicKey(pub); err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: sk.record.ID, Algorithm: sk.record.Algorithm, Use: "sig"})
	}
	return json.Marshal(set)
}

// supportedPublicKey refuses what our algorithms cannot publish: go-jose
// would write a P-384 or P-521 key too, but ES256 is P-256 only.
func supportedPublicKey(pub crypto.PublicKey) error {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return errors.New("only P-256 EC keys are supported")
		}
	case ed25519.PublicKey, *rsa.PublicKey:
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
	return nil
}

// deterministicES256 is golang-jwt's ES256 with RFC 6979 signatures.
type deterministicES256 struct{}

func (deterministicES256) Alg() string { return AlgES256 }

func (deterministicES256) Verify(signingString string, sig []byte, key any) error {
	return jwt.SigningMethodES256.Verify(signingString, sig, key)
}

func (deterministicES256) Sign(signingString string, key any) ([]byte, error) {
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, jwt.ErrInvalidKeyType
	}
	digest := sha256.Sum256([]byte(signingString))
	// A nil random source selects RFC 6979 deterministic signing.
	der, err := priv.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	// JWS wants r || s, 32 bytes each, where crypto/ecdsa gives ASN.1.
	var r, sv []byte
	seq, inner := cryptobyte.String(der), cryptobyte.String(nil)
	if !seq.ReadASN1(&inner, cbasn1.SEQUENCE) || !seq.Empty() ||
		!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&sv) || !inner.Empty() ||
		len(r) > 32 || len(sv) > 32 {
		return nil, errors.New("ecdsa: unexpected signature encoding")
	}
	// ReadASN1Integer gives them without leading zeros: right-align.
	out := make([]byte, 64)
	copy(out[32-len(r):32], r)
	copy(out[64-len(sv):], sv)
	return out, nil
}
