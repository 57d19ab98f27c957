package providers

import (
	"errors"
	"strings"
	"testing"
)

const setSeed = `{"iss":"https://accounts.google.com/","aud":"c","iat":1700000000,"jti":"j1",` +
	`"events":{"https://schemas.openid.net/secevent/risc/event-type/sessions-revoked":` +
	`{"subject":{"subject_type":"iss-sub","iss":"https://accounts.google.com/","sub":"7375626A656374"}}}}`

func TestParseSETPayload(t *testing.T) {
	set, err := ParseSETPayload([]byte(setSeed))
	if err != nil {
		t.Fatal(err)
	}
	if set.JTI != "j1" || len(set.Events) != 1 || set.Events[0].Subject == nil || set.Events[0].Subject.Subject != "7375626A656374" {
		t.Fatalf("%+v", set)
	}
	for name, bad := range map[string]string{
		"duplicate jti":      strings.Replace(setSeed, `"jti":"j1"`, `"jti":"j1","jti":"j2"`, 1),
		"case variant":       strings.Replace(setSeed, `"jti":"j1"`, `"jti":"j1","JTI":"j2"`, 1),
		"duplicate sub":      strings.Replace(setSeed, `"sub":"7375626A656374"`, `"sub":"a","sub":"b"`, 1),
		"iat a string":       strings.Replace(setSeed, `"iat":1700000000`, `"iat":"1700000000"`, 1),
		"events an array":    `{"iss":"i","iat":1,"jti":"j","events":[]}`,
		"event null":         `{"iss":"i","iat":1,"jti":"j","events":{"t":null}}`,
		"no iat":             `{"iss":"i","jti":"j","events":{"t":{}}}`,
		"trailing data":      setSeed + `{}`,
		"subject not object": `{"iss":"i","iat":1,"jti":"j","events":{"t":{"subject":"x"}}}`,
	} {
		_, err := ParseSETPayload([]byte(bad))
		var pe *Error
		if !errors.As(err, &pe) || pe.Reason != ReasonMalformed {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
}

// FuzzSETPayload: the SET decoder never panics, and what it accepts has
// the claims it promises.
func FuzzSETPayload(f *testing.F) {
	f.Add([]byte(setSeed))
	f.Add([]byte(`{"iss":"i","iat":1.5,"jti":"j","events":{"t":{}},"sub_id":{"format":"iss_sub","iss":"i","sub":"s"}}`))
	f.Add([]byte(`{"iss":"i","iat":1,"jti":"j","events":{"t":{"subject":{"sub":"a","SUB":"b"}}}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		set, err := ParseSETPayload(payload)
		if err != nil {
			return
		}
		if set.Issuer == "" || set.JTI == "" || len(set.Events) == 0 || len(set.Events) > maxSETEvents {
			t.Fatalf("accepted a SET without its required claims: %+v", set)
		}
		_ = PeekSETIssuer("e30." + "x" + ".e30")
	})
}
