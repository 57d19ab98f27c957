package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheckStrict holds checkStrict's byte walker to the walk it replaced,
// which read the document through encoding/json's Decoder.Token: on every
// document json.Valid accepts, both give the same verdict with the same
// message (the first duplicate, case-variant or too deep value, in
// document order), for each type the providers decode strictly; any other
// document is refused.
func FuzzCheckStrict(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://i","sub":"a","aud":["x","y"],"exp":1767225600,"iat":1767225600.5,"email_verified":"true"}`,
		`{"sub":"a","SUB":"victim"}`, `{"sub":"a","sub":"b"}`, `{"s\u0075b":"a","sub":"b"}`, `{"\u017fub":"x"}`,
		`{"keys":[{"kty":"RSA","KTY":"EC"}]}`, `{"keys":[{"kid":"a"},{"kid":"a","kid":"b"}]}`,
		`{"a":{"b":[{"c":1,"c":2}]}}`, ` { "x" : [ 1 , -2.5e3 , true , null , "\"}" ] } `,
		`{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k10":1,"k11":1,"k12":1,"k13":1,"k14":1,"k15":1,"k16":1,"k17":1,"k1":2}`,
		strings.Repeat("[", 33) + strings.Repeat("]", 33), strings.Repeat("[", 32) + "1" + strings.Repeat("]", 32),
		`{} {}`, `{"a":1,}`, `"\ud800"`, `{"\ud800":1,"\udfff":2}`, `[]`, `1`,
	} {
		f.Add([]byte(s))
	}
	types := []reflect.Type{reflect.TypeFor[claims](), reflect.TypeFor[jwksDoc](), reflect.TypeFor[joseHeader](), nil}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range types {
			got := checkStrict(data, typ)
			if !json.Valid(data) {
				if got == nil {
					t.Fatalf("%v: accepted a document json.Valid refuses", typ)
				}
				continue
			}
			want := checkStrictByTokens(data, typ)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%v: checkStrict = %v, the token walk = %v", typ, got, want)
			}
		}
	})
}

// checkStrictByTokens is checkStrict as it was, over Decoder.Token: the
// reference for FuzzCheckStrict.
func checkStrictByTokens(data []byte, t reflect.Type) error {
	if !utf8.Valid(data) {
		return errors.New("document is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkByTokens(dec, t, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

func walkByTokens(dec *json.Decoder, t reflect.Type, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	s := shapeOf(t)
	switch delim {
	case '[':
		for dec.More() {
			if err := walkByTokens(dec, s.elem, depth+1); err != nil {
				return err
			}
		}
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key := kt.(string)
			if seen[key] {
				return fmt.Errorf("%w %q", errDuplicateKey, clip(key))
			}
			seen[key] = true
			next, err := s.fieldType(key)
			if err != nil {
				return err
			}
			if err := walkByTokens(dec, next, depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token()
	return err
}
