package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/authex/authex/envelope"
	"github.com/authex/authex/exchange"
)

// The key-encryption key (secrets.kek, secrets.kek_file) seals every
// signing key and refresh MAC secret in the store (package envelope). It
// must live apart from the data: in the environment, a secret manager's
// file, a mounted secret. Without one, bbolt keeps a generated KEK in
// storage.bolt.path + ".kek" (mode 0600, never inside the database file),
// which keeps backups (/admin/v1/backup, `authex export`) free of key
// material but not a copy of the whole disk; PostgreSQL, whose database is
// reached over the network and backed up apart from the binary's host,
// refuses to start without one.

// kekFileSuffix names the generated KEK file beside a bbolt database.
const kekFileSuffix = ".kek"

// validateSecrets parses the KEK settings and reads kek_file.
func (c *Config) validateSecrets(p *Problems) {
	sc := &c.Secrets
	sc.kek, sc.previous = nil, nil
	switch {
	case sc.KEK != "" && sc.KEKFile != "":
		p.add("secrets.kek_file", "set secrets.kek or secrets.kek_file, not both")
	case sc.KEKFile != "":
		raw, err := os.ReadFile(sc.KEKFile)
		if err != nil {
			p.add("secrets.kek_file", "cannot be read: %v", errors.Unwrap(err))
			break
		}
		if sc.kek, err = envelope.ParseKEK(string(raw)); err != nil {
			p.add("secrets.kek_file", "%v", err)
		}
	case sc.KEK != "":
		var err error
		if sc.kek, err = envelope.ParseKEK(string(sc.KEK)); err != nil {
			p.add("secrets.kek", "%v", err)
		}
	}
	for i, prev := range sc.PreviousKEKs {
		k, err := envelope.ParseKEK(string(prev))
		if err != nil {
			p.add(fmt.Sprintf("secrets.previous_keks[%d]", i), "%v", err)
			continue
		}
		sc.previous = append(sc.previous, k)
	}
	if len(sc.PreviousKEKs) > 0 && sc.KEK == "" && sc.KEKFile == "" {
		p.add("secrets.previous_keks", "needs secrets.kek or secrets.kek_file: the key to reseal under")
	}
	if c.Storage.Driver == "postgres" && sc.KEK == "" && sc.KEKFile == "" {
		p.add("secrets.kek", "is required with storage.driver postgres: set secrets.kek: \"${AUTHEX_KEK}\" or secrets.kek_file "+
			"to 32 random bytes in base64 (openssl rand -base64 32), kept apart from the database")
	}
}

// validateSigningKeyFiles reads and parses tokens.signing_key_files.
func (c *Config) validateSigningKeyFiles(p *Problems) {
	t := &c.Tokens
	t.signingKeys = nil
	seen := map[string]bool{}
	for i, path := range t.SigningKeyFiles {
		key := fmt.Sprintf("tokens.signing_key_files[%d]", i)
		raw, err := os.ReadFile(path)
		if err != nil {
			p.add(key, "cannot be read: %v", errors.Unwrap(err))
			continue
		}
		pk, err := exchange.ParsePEMKey(raw)
		if err != nil {
			p.add(key, "%s: %v", path, err)
			continue
		}
		if seen[pk.Kid] {
			p.add(key, "%s: the same key as an earlier file", path)
			continue
		}
		seen[pk.Kid] = true
		t.signingKeys = append(t.signingKeys, pk)
	}
}

// autoKEKPath is where bbolt keeps a generated KEK when none is
// configured; "" when one is configured or the store is not bbolt.
func (c *Config) autoKEKPath() string {
	if c.Storage.Driver != "bolt" || c.Secrets.kek != nil {
		return ""
	}
	return c.Storage.Bolt.Path + kekFileSuffix
}

// warnAutoKEK prints config check's warning about a generated KEK.
func warnAutoKEK(cfg Config, w io.Writer) {
	path := cfg.autoKEKPath()
	if path == "" {
		return
	}
	fmt.Fprintf(w, `WARNING: no key-encryption key is configured (secrets.kek / secrets.kek_file).
WARNING: authex keeps a generated one in %s, beside the database: backups
WARNING: and exports carry no key material, but whoever copies both files has
WARNING: the signing keys and the refresh-token secret. For production set
WARNING: secrets.kek: "${AUTHEX_KEK}" (openssl rand -base64 32) from a secret store.
`, path)
}

// newSealer returns the sealer for cfg's KEK. Without one (bbolt only:
// Validate refuses PostgreSQL) it reads the KEK file beside the database,
// creating it when absent, and logs a loud warning. create=false never
// writes a file (nil sealer when there is none).
func newSealer(cfg Config, log *slog.Logger, create bool) (*envelope.Sealer, error) {
	if cfg.Secrets.kek != nil {
		return envelope.New(cfg.Secrets.kek, cfg.Secrets.previous...)
	}
	path := cfg.autoKEKPath()
	if path == "" {
		return nil, errors.New("secrets.kek is required with this store")
	}
	kek, err := readOrCreateKEK(path, create)
	if err != nil || kek == nil {
		return nil, err
	}
	log.Warn("NO KEY-ENCRYPTION KEY CONFIGURED: the signing keys and refresh secret are sealed with a generated key kept beside the database; "+
		"whoever copies both files has them. Set secrets.kek (or secrets.kek_file) for production.", "kek_file", path)
	return envelope.New(kek)
}

// readOrCreateKEK reads the KEK at path, or creates it (mode 0600, O_EXCL:
// never replaces one) when absent and create is set.
func readOrCreateKEK(path string, create bool) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		kek, gerr := envelope.NewKEK()
		if gerr != nil {
			return nil, gerr
		}
		f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if cerr == nil {
			_, werr := f.WriteString(kek + "\n")
			if serr := f.Sync(); werr == nil {
				werr = serr
			}
			if cerr = f.Close(); werr != nil {
				cerr = werr
			}
			if cerr != nil {
				os.Remove(path)
				return nil, fmt.Errorf("create the key-encryption key file %s: %w", path, cerr)
			}
		} else if !errors.Is(cerr, fs.ErrExist) {
			return nil, fmt.Errorf("create the key-encryption key file %s: %w", path, cerr)
		}
		raw, err = os.ReadFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the key-encryption key file: %w", err)
	}
	kek, err := envelope.ParseKEK(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("the key-encryption key file %s: %w", path, err)
	}
	return kek, nil
}
