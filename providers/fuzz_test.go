package providers

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fuzz targets feed the decoders of provider input (id_token header and
// claims, JWKS, discovery, userinfo-like answers) arbitrary bytes: they must
// never panic, and whatever decodeStrict accepts must hold no key that
// differs from a field's name only in case.

func FuzzParseHeader(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, h := range []string{`{"alg":"RS256","kid":"k"}`, `{"alg":"RS256","ALG":"none"}`, `{"alg":"none"}`, `{"alg":"RS256","alg":"HS256"}`, `[]`, `{"kid":1}`} {
		f.Add(enc([]byte(h)) + "." + enc([]byte(`{}`)) + "." + enc([]byte("sig")))
	}
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := parseHeader(raw)
		if err == nil && h.Alg == "" {
			t.Fatal("accepted a header without alg")
		}
		if err != nil && ReasonOf(err) != ReasonMalformed {
			t.Fatalf("reason %q", ReasonOf(err))
		}
	})
}

func FuzzClaims(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://i","sub":"a","aud":["x","y"],"exp":1767225600,"iat":1767225600.5,"email_verified":"true"}`,
		`{"sub":"a","SUB":"victim"}`, `{"sub":"a","sub":"b"}`, `{"exp":"1767225600"}`, `{"ſub":"x"}`,
		`{"aud":null,"nbf":-1,"x":{"y":[{"z":1}]}}`, `{"email_verified":"TRUE","is_private_email":false,"xms_edov":1}`,
		`{"exp":1e400}`, `{"exp":9223372036854775808}`, `null`, `[]`, `{"a":1}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		cl, err := decodeClaims(payload)
		if err != nil {
			if ReasonOf(err) != ReasonMalformed {
				t.Fatalf("reason %q", ReasonOf(err))
			}
			return
		}
		checkNoVariant(t, payload, reflect.TypeFor[claims]())
		var loose claims
		if err := json.Unmarshal(payload, &loose); err != nil || !reflect.DeepEqual(cl, loose) {
			t.Fatalf("strict %+v, encoding/json %+v (%v)", cl, loose, err)
		}
	})
}

func FuzzJWKS(f *testing.F) {
	for _, s := range []string{
		`{"keys":[{"kty":"RSA","kid":"k","use":"sig","alg":"RS256","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
		`{"keys":[],"Keys":[]}`, `{"keys":[{"kty":"RSA","KTY":"EC"}]}`, `{"keys":null}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := decodeJWKS(body)
		if err != nil {
			return
		}
		checkNoVariant(t, body, reflect.TypeFor[jwksDoc]())
		for _, r := range raw {
			var k struct{ Kty string }
			_ = json.Unmarshal(r, &k)
		}
	})
}

func FuzzDiscovery(f *testing.F) {
	for _, s := range []string{
		`{"issuer":"https://i","jwks_uri":"https://i/keys","token_endpoint":"https://i/token","id_token_signing_alg_values_supported":["RS256"]}`,
		`{"issuer":"https://i","Issuer":"https://evil"}`, `{"jwks_uri":"a","jwks_uri":"b"}`, `{"id_token_signing_alg_values_supported":"RS256"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var doc discoveryDoc
		if err := decodeStrict(body, maxDocumentSize, &doc); err != nil {
			return
		}
		checkNoVariant(t, body, reflect.TypeFor[discoveryDoc]())
		if doc.JWKSURI != "" {
			_ = checkEndpoint("jwks_uri", doc.JWKSURI)
		}
	})
}

// FuzzUserInfo covers the answers of userinfo, Google's tokeninfo, RFC 7662
// introspection and GitHub's API: every one goes through decodeStrict.
func FuzzUserInfo(f *testing.F) {
	for _, s := range []string{
		`{"sub":"a","email":"a@b.c","email_verified":"true","id":12}`, `{"id":"x","ID":"y"}`,
		`{"active":true,"client_id":"c","aud":["c"],"sub":"s"}`, `{"aud":"c","azp":"c","sub":"1","expires_in":"3599"}`,
		`{"user":{"id":1,"login":"l"}}`, `[{"email":"a@b.c","primary":true,"verified":true}]`, `[{"email":"a","Email":"b"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{new(userInfo), new(tokenInfo), new(bindAnswer), new(githubUser), new(githubApp), new(githubEmails)}
		for _, out := range targets {
			err := decodeStrict(body, maxDocumentSize, out)
			if err != nil {
				continue
			}
			checkNoVariant(t, body, reflect.TypeOf(out).Elem())
			if u, ok := out.(*userInfo); ok {
				_ = u.subject()
			}
		}
	})
}

// checkNoVariant re-reads an accepted document with encoding/json into
// maps and checks, for the top-level object (or each element of a
// top-level array), that every key folding onto a field of t is exact.
func checkNoVariant(t *testing.T, body []byte, typ reflect.Type) {
	t.Helper()
	s := shapeOf(typ)
	var objs []map[string]json.RawMessage
	if s.elem != nil {
		var list []json.RawMessage
		if json.Unmarshal(body, &list) != nil {
			return
		}
		for _, r := range list {
			var m map[string]json.RawMessage
			if json.Unmarshal(r, &m) == nil {
				objs = append(objs, m)
			}
		}
		s = shapeOf(s.elem)
	} else {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			return
		}
		objs = append(objs, m)
	}
	for _, m := range objs {
		for k := range m {
			if f, ok := s.fields[foldKey(k)]; ok && f.name != k && !strings.ContainsRune(k, '\uFFFD') {
				t.Fatalf("accepted key %q, a case-variant of %q", k, f.name)
			}
		}
	}
}

// FuzzCacheLifetime: the JWKS answer's Cache-Control, Expires and Date
// headers decide when keys are refetched; no header may yield a negative
// or absurd lifetime.
func FuzzCacheLifetime(f *testing.F) {
	f.Add("public, max-age=600", "", "")
	f.Add("no-store", "", "")
	f.Add("max-age=\"99999999999999999999\"", "", "")
	f.Add("", "Thu, 01 Jan 2037 00:00:00 GMT", "Thu, 01 Jan 2026 00:00:00 GMT")
	f.Add("", "0", "")
	f.Fuzz(func(t *testing.T, cc, expires, date string) {
		h := http.Header{}
		if cc != "" {
			h.Set("Cache-Control", cc)
		}
		if expires != "" {
			h.Set("Expires", expires)
		}
		if date != "" {
			h.Set("Date", date)
		}
		d := cacheLifetime(h)
		if d < 0 {
			t.Fatalf("lifetime %s", d)
		}
		k := &keySet{minTTL: 5 * time.Minute, maxTTL: time.Hour}
		if c := k.clamp(d); c < 5*time.Minute || c > time.Hour {
			t.Fatalf("clamped lifetime %s", c)
		}
	})
}
