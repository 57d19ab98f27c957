package providers_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authex/authex/providers"
	"github.com/authex/authex/providers/providertest"
)

// rawClaims is a valid claims object for webClient with extra members
// spliced in verbatim: the place for duplicate and case-variant keys that a
// map cannot hold.
func rawClaims(iss *providertest.Issuer, extra string) []byte {
	now := time.Now().Unix()
	body := fmt.Sprintf(`{"iss":%q,"aud":%q,"iat":%d,"exp":%d,"email":"ada@example.com"`, iss.URL(), webClient, now, now+3600)
	if extra != "" {
		body += "," + extra
	}
	return []byte(body + "}")
}

// TestStrictClaims: a validly signed id_token whose claims name a claim we
// read twice, or in another case, is malformed, whichever spelling would
// have won. encoding/json alone signs "SUB":"victim" in as victim.
func TestStrictClaims(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	now := time.Now().Unix()
	tests := []struct {
		name  string
		extra string
		want  string // "" = accepted
	}{
		{"plain", `"sub":"a","email_verified":true`, ""},
		{"unknown claims in any case", `"sub":"a","Foo":1,"foo":{"Bar":[1,{"x":2}]}`, ""},
		{"sub twice", `"sub":"a","sub":"victim"`, providers.ReasonMalformed},
		{"SUB after sub", `"sub":"a","SUB":"victim"`, providers.ReasonMalformed},
		{"SUB alone", `"SUB":"victim"`, providers.ReasonMalformed},
		{"long s folds to s", `"sub":"a","ſub":"victim"`, providers.ReasonMalformed},
		{"Email_Verified overrides", `"sub":"a","email_verified":false,"Email_Verified":true`, providers.ReasonMalformed},
		{"AUD", `"sub":"a","AUD":"other"`, providers.ReasonMalformed},
		{"Iss", `"sub":"a","Iss":"https://evil.example"`, providers.ReasonMalformed},
		{"duplicate inside an unknown claim", `"sub":"a","address":{"x":1,"x":2}`, providers.ReasonMalformed},
		{"exp as a string", `"sub":"a","exp":"` + fmt.Sprint(now+3600) + `"`, providers.ReasonMalformed},
		{"iat as a string", `"sub":"a","iat":"` + fmt.Sprint(now) + `"`, providers.ReasonMalformed},
		{"nbf as a string", `"sub":"a","nbf":"` + fmt.Sprint(now) + `"`, providers.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := iss.MintRaw(t, rawClaims(iss, tt.extra))
			id, err := v.Verify(t.Context(), providers.Credential{IDToken: token})
			if tt.want != "" {
				checkRefused(t, err, tt.want, token)
				return
			}
			if err != nil || id.Subject != "a" {
				t.Fatalf("Verify = %+v, %v", id, err)
			}
		})
	}
}

// TestClaimShapes pins what go-oidc's IDTokenVerifier refuses before our
// strict decode sees the claims: exp or iat null, and distributed claims
// whose names point at sources the token does not carry. nbf null is
// absent.
func TestClaimShapes(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	now := time.Now().Unix()
	times := fmt.Sprintf(`"iat":%d,"exp":%d`, now, now+3600)
	tests := []struct {
		name   string
		claims string // besides iss, aud, sub
		want   string // "" = accepted
	}{
		{"exp null", fmt.Sprintf(`"iat":%d,"exp":null`, now), providers.ReasonMalformed},
		{"iat null", fmt.Sprintf(`"iat":null,"exp":%d`, now+3600), providers.ReasonMalformed},
		{"nbf null", times + `,"nbf":null`, ""},
		{"distributed claims", times + `,"_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://c.example/g","access_token":"t"}}`, ""},
		{"claim name without its source", times + `,"_claim_names":{"groups":"src1"},"_claim_sources":{"src2":{"endpoint":"https://c.example/g"}}`, providers.ReasonMalformed},
		{"claim name with an empty source", times + `,"_claim_names":{"groups":""},"_claim_sources":{"":{}}`, providers.ReasonMalformed},
		{"claim names not strings", times + `,"_claim_names":{"groups":1}`, providers.ReasonMalformed},
		{"claim source not an object", times + `,"_claim_sources":{"src1":"x"}`, providers.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"a",%s}`, iss.URL(), webClient, tt.claims)
			token := iss.MintRaw(t, []byte(body))
			id, err := v.Verify(t.Context(), providers.Credential{IDToken: token})
			if tt.want != "" {
				checkRefused(t, err, tt.want, token)
				return
			}
			if err != nil || id.Subject != "a" {
				t.Fatalf("Verify = %+v, %v", id, err)
			}
		})
	}
}

// TestStrictHeader: the JOSE header gets the same rules.
func TestStrictHeader(t *testing.T) {
	iss := providertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	kid := iss.KeyID()
	payload := rawClaims(iss, `"sub":"a"`)
	tests := []struct {
		name, header, want string
	}{
		{"plain", `{"alg":"RS256","kid":"` + kid + `"}`, ""},
		{"alg twice", `{"alg":"RS256","alg":"RS256","kid":"` + kid + `"}`, providers.ReasonMalformed},
		{"ALG", `{"alg":"RS256","ALG":"none","kid":"` + kid + `"}`, providers.ReasonMalformed},
		{"Kid", `{"alg":"RS256","kid":"` + kid + `","Kid":"other"}`, providers.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := iss.MintRawHeader(t, []byte(tt.header), payload)
			_, err := v.Verify(t.Context(), providers.Credential{IDToken: token})
			if tt.want != "" {
				checkRefused(t, err, tt.want, token)
			} else if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStrictUserInfo: userinfo and tokeninfo answers (here of an oauth2
// provider) with duplicate or case-variant keys refuse the token as
// malformed rather than pick one spelling.
func TestStrictUserInfo(t *testing.T) {
	var tokenInfo, userInfo string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/tokeninfo":
			fmt.Fprint(w, tokenInfo)
		case "/userinfo":
			fmt.Fprint(w, userInfo)
		}
	}))
	t.Cleanup(srv.Close)
	v, err := providers.New(t.Context(), providers.Config{
		Name: "o", Type: "oauth2", Issuer: "https://o.example", ClientIDs: []string{webClient},
		TokenInfoURL: srv.URL + "/tokeninfo", UserInfoURL: srv.URL + "/userinfo", Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	goodTI := `{"aud":"` + webClient + `","sub":"a"}`
	goodUI := `{"sub":"a","email":"a@example.com","email_verified":false}`
	tests := []struct {
		name, ti, ui, want string
	}{
		{"plain", goodTI, goodUI, ""},
		{"userinfo Email_Verified", goodTI, `{"sub":"a","email":"a@example.com","email_verified":false,"Email_Verified":true}`, providers.ReasonMalformed},
		{"userinfo sub twice", goodTI, `{"sub":"a","sub":"victim"}`, providers.ReasonMalformed},
		{"userinfo ID", goodTI, `{"ID":"victim","email":"a@example.com"}`, providers.ReasonMalformed},
		{"tokeninfo AUD", `{"aud":"other","AUD":"` + webClient + `","sub":"a"}`, goodUI, providers.ReasonMalformed},
		{"tokeninfo Client_Id", `{"Client_Id":"` + webClient + `","sub":"a"}`, goodUI, providers.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenInfo, userInfo = tt.ti, tt.ui
			id, err := v.Verify(t.Context(), providers.Credential{AccessToken: "at-1"})
			if tt.want != "" {
				checkRefused(t, err, tt.want, "at-1")
				return
			}
			if err != nil || id.Subject != "a" || id.EmailVerified {
				t.Fatalf("Verify = %+v, %v", id, err)
			}
		})
	}
}

// TestStrictDocuments: a discovery document or JWKS with duplicate or
// case-variant keys is not loaded; the provider stays unavailable.
func TestStrictDocuments(t *testing.T) {
	tests := []struct {
		name, discovery, jwks string
	}{
		{"discovery jwks_uri twice", `{"issuer":%q,"jwks_uri":%q,"jwks_uri":"https://evil.example/keys"}`, ""},
		{"discovery JWKS_URI", `{"issuer":%q,"jwks_uri":%q,"JWKS_URI":"https://evil.example/keys"}`, ""},
		{"jwks Keys", "", `{"keys":[],"Keys":[]}`},
		{"jwks key N", "", `{"keys":[{"kty":"RSA","n":"AQAB","N":"AQAB","e":"AQAB"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/.well-known/openid-configuration":
					d := `{"issuer":%q,"jwks_uri":%q}`
					if tt.discovery != "" {
						d = tt.discovery
					}
					fmt.Fprintf(w, d, base, base+"/keys")
				case "/keys":
					fmt.Fprint(w, tt.jwks)
				}
			}))
			t.Cleanup(srv.Close)
			base = srv.URL
			v, err := providers.New(t.Context(), providers.WithTiming(providers.Config{
				Name: "o", Type: "oidc", Issuer: base, ClientIDs: []string{webClient}, Logger: quiet,
			}, time.Hour, time.Hour, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				err := v.Ready()
				if err == nil {
					t.Fatal("provider became ready")
				}
				if strings.Contains(err.Error(), "failed") {
					if !errors.Is(err, providers.ErrUnavailable) || !strings.Contains(err.Error(), "key") {
						t.Fatalf("Ready = %v", err)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("Ready = %v", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
