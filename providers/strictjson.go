package providers

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Strict JSON for everything a provider tells us.
//
// encoding/json matches object keys to struct fields without regard to case
// and lets the last duplicate win. For a signed token that is a takeover: a
// token with "sub":"a" and "SUB":"victim" decodes as victim, and
// "Email_Verified":true overrides "email_verified":false, although the
// provider's own (case-sensitive) reading of the same bytes differs. So
// every provider answer we read (id_token header and claims, discovery,
// JWKS, userinfo, tokeninfo, introspection, GitHub's API) goes through
// decodeStrict, which first walks the document and refuses:
//
//   - a key that appears twice in one object (at any depth);
//   - a key that equals, up to encoding/json's case folding, a field we
//     read but not exactly ("SUB", "Email_Verified", "ſub").
//
// Only then is the document decoded with encoding/json, which can no longer
// pick a field by a case-variant. (encoding/json/v2 does this natively, but
// needs GOEXPERIMENT=jsonv2 in Go 1.26.)

// maxJSONDepth bounds nesting; provider documents are a few levels deep.
const maxJSONDepth = 32

var (
	errDuplicateKey = errors.New("duplicate key")
	errCaseVariant  = errors.New("key differs from a known key only in case")
)

// decodeStrict decodes data, a JSON document of at most limit bytes, into
// v (a pointer), refusing duplicate and case-variant keys as described
// above and any trailing data. Errors name the offending key but never
// quote values.
func decodeStrict(data []byte, limit int, v any) error {
	if len(data) > limit {
		return fmt.Errorf("document is %d bytes, limit %d", len(data), limit)
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return errors.New("decodeStrict needs a pointer")
	}
	if err := checkStrict(data, t.Elem()); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// checkStrict walks data as a value of type t (nil: a value we do not
// read) and applies the strict rules.
func checkStrict(data []byte, t reflect.Type) error {
	if !utf8.Valid(data) {
		// encoding/json replaces invalid UTF-8 in keys, which could make
		// two keys that differ in their bytes equal after decoding.
		return errors.New("document is not valid UTF-8")
	}
	if !json.Valid(data) {
		// Also refuses trailing data after the document.
		return errors.New("document is not valid JSON")
	}
	w := strictWalker{data: data}
	return w.value(t, 0)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// shape is what the walk needs of a Go type: the fields of a struct by
// folded key, the element of a slice, or nothing (opaque).
type shape struct {
	fields map[string]field // folded key -> field
	// exact is fields by their exact key: a key that names a field as
	// written (nearly every key) is found without folding it.
	exact map[string]reflect.Type
	elem  reflect.Type // slice or array element
}

type field struct {
	name string // the exact JSON key
	typ  reflect.Type
}

var shapes sync.Map // reflect.Type -> *shape

// fieldType is the type of the field key names (nil when it names none,
// or s is no struct), or errCaseVariant when key matches a field's name
// only without regard to case.
func (s *shape) fieldType(key string) (reflect.Type, error) {
	if s.fields == nil {
		return nil, nil
	}
	if t, ok := s.exact[key]; ok {
		return t, nil
	}
	// A field whose name were key itself would be in exact.
	if f, ok := s.fields[foldKey(key)]; ok {
		return nil, fmt.Errorf("%w: %q (expected %q)", errCaseVariant, clip(key), f.name)
	}
	return nil, nil
}

// opaqueShape is the shape of a value no Go type reads.
var opaqueShape = &shape{}

func shapeOf(t reflect.Type) *shape {
	if t == nil {
		return opaqueShape
	}
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	key := t
	s := &shape{}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType):
		// Decodes itself (numericDate, audience, flexBool, RawMessage):
		// only the generic rules apply inside.
	case t.Kind() == reflect.Struct:
		s.fields = map[string]field{}
		addFields(s.fields, t)
		s.exact = make(map[string]reflect.Type, len(s.fields))
		for _, f := range s.fields {
			s.exact[f.name] = f.typ
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() != reflect.Uint8:
		s.elem = t.Elem()
	}
	shapes.Store(key, s)
	return s
}

// addFields records the JSON keys of t's exported fields, including those
// of embedded structs, the way encoding/json names them.
func addFields(m map[string]field, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(m, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[foldKey(name)] = field{name: name, typ: f.Type}
	}
}

// foldKey folds a key the way encoding/json does when it matches keys to
// fields: each rune to upper(lower(r)), so that "ſ" (long s) and "K"
// (Kelvin) match too.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	return b.String()
}

// strictWalker walks a document that json.Valid accepted, byte by byte:
// encoding/json's Decoder.Token allocates for every token (and builds a
// syntax error for every value it reads to find where the value ends),
// which made the walk most of an id_token's decoding.
type strictWalker struct {
	data []byte
	pos  int
}

// maxLinearKeys: objects with more keys than this track them in a map,
// so that a token with thousands of keys stays linear.
const maxLinearKeys = 16

func (w *strictWalker) value(t reflect.Type, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	}
	w.skipSpace()
	switch w.data[w.pos] {
	case '{':
		return w.object(t, depth)
	case '[':
		return w.array(t, depth)
	case '"':
		w.skipString()
	default: // a number, true, false or null
		for w.pos < len(w.data) && strings.IndexByte(",]} \t\n\r", w.data[w.pos]) < 0 {
			w.pos++
		}
	}
	return nil
}

func (w *strictWalker) object(t reflect.Type, depth int) error {
	w.pos++ // {
	s := shapeOf(t)
	var (
		keys []string        // the first maxLinearKeys keys
		many map[string]bool // every key, once there are more
	)
	w.skipSpace()
	if w.data[w.pos] == '}' {
		w.pos++
		return nil
	}
	for {
		w.skipSpace()
		key, err := w.key()
		if err != nil {
			return err
		}
		switch {
		case many != nil:
			if many[key] {
				return fmt.Errorf("%w %q", errDuplicateKey, clip(key))
			}
			many[key] = true
		case slices.Contains(keys, key):
			return fmt.Errorf("%w %q", errDuplicateKey, clip(key))
		case len(keys) < maxLinearKeys:
			keys = append(keys, key)
		default:
			many = make(map[string]bool, 2*maxLinearKeys)
			for _, k := range keys {
				many[k] = true
			}
			many[key] = true
		}
		next, err := s.fieldType(key)
		if err != nil {
			return err
		}
		w.skipSpace()
		w.pos++ // :
		if err := w.value(next, depth+1); err != nil {
			return err
		}
		w.skipSpace()
		c := w.data[w.pos]
		w.pos++
		if c == '}' {
			return nil
		}
	}
}

func (w *strictWalker) array(t reflect.Type, depth int) error {
	w.pos++ // [
	elem := shapeOf(t).elem
	w.skipSpace()
	if w.data[w.pos] == ']' {
		w.pos++
		return nil
	}
	for {
		if err := w.value(elem, depth+1); err != nil {
			return err
		}
		w.skipSpace()
		c := w.data[w.pos]
		w.pos++
		if c == ']' {
			return nil
		}
	}
}

// key reads an object key as encoding/json decodes it: escapes are
// rare in keys, so only a key that has one goes through encoding/json.
func (w *strictWalker) key() (string, error) {
	start := w.pos
	escaped := w.skipString()
	if !escaped {
		return string(w.data[start+1 : w.pos-1]), nil
	}
	var key string
	if err := json.Unmarshal(w.data[start:w.pos], &key); err != nil {
		return "", err
	}
	return key, nil
}

// skipString moves past the string that starts at pos and reports whether
// it holds an escape.
func (w *strictWalker) skipString() (escaped bool) {
	w.pos++ // "
	for {
		switch w.data[w.pos] {
		case '\\':
			escaped = true
			w.pos += 2
		case '"':
			w.pos++
			return escaped
		default:
			w.pos++
		}
	}
}

func (w *strictWalker) skipSpace() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// clip keeps an attacker's key short in our logs.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// DecodeStrict is decodeStrict for other packages that read untrusted
// JSON (the claims hook's answer).
func DecodeStrict(data []byte, limit int, v any) error { return decodeStrict(data, limit, v) }
