package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
)

// Kinds of message, each with three templates: KIND.subject.tmpl and
// KIND.txt.tmpl (text/template) and KIND.html.tmpl (html/template).
const (
	KindVerifyEmail   = "verify_email"
	KindResetPassword = "reset_password"
)

// Kinds lists every kind of message.
var Kinds = []string{KindVerifyEmail, KindResetPassword}

//go:embed templates/*.tmpl
var defaultTemplates embed.FS

// Data is what every template sees.
type Data struct {
	Email   string // the recipient
	Name    string // the account's name, may be ""
	Link    string // the link with the token
	Expires string // how long the link lives, e.g. "30m0s"
}

type kindTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// Templates renders messages.
type Templates struct {
	kinds map[string]kindTemplates
}

// LoadTemplates parses the embedded defaults, each replaced by the file of
// the same name in dir when dir is set and has it. Any parse error, or a
// template that fails on sample data, is an error naming the file.
func LoadTemplates(dir string) (*Templates, error) {
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
		b, err := defaultTemplates.ReadFile("templates/" + name)
		return string(b), err
	}
	t := &Templates{kinds: map[string]kindTemplates{}}
	for _, k := range Kinds {
		var kt kindTemplates
		for _, part := range []string{"subject", "txt", "html"} {
			name := k + "." + part + ".tmpl"
			src, err := read(name)
			if err != nil {
				return nil, fmt.Errorf("mail template %s: %w", name, err)
			}
			switch part {
			case "subject":
				kt.subject, err = texttemplate.New(name).Option("missingkey=error").Parse(src)
			case "txt":
				kt.text, err = texttemplate.New(name).Option("missingkey=error").Parse(src)
			case "html":
				kt.html, err = htmltemplate.New(name).Option("missingkey=error").Parse(src)
			}
			if err != nil {
				return nil, fmt.Errorf("mail template %s: %w", name, err)
			}
		}
		t.kinds[k] = kt
	}
	sample := Data{Email: "pat@example.com", Name: "Pat", Link: "https://app.example.com/x?token=t", Expires: "30m0s"}
	for _, k := range Kinds {
		if _, err := t.Render(k, "pat@example.com", sample); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Render makes the message of kind for to.
func (t *Templates) Render(kind, to string, d Data) (Message, error) {
	kt, ok := t.kinds[kind]
	if !ok {
		return Message{}, fmt.Errorf("mail: no templates for %q", kind)
	}
	var subj, text, html bytes.Buffer
	if err := kt.subject.Execute(&subj, d); err != nil {
		return Message{}, fmt.Errorf("mail template %s.subject.tmpl: %w", kind, err)
	}
	if err := kt.text.Execute(&text, d); err != nil {
		return Message{}, fmt.Errorf("mail template %s.txt.tmpl: %w", kind, err)
	}
	if err := kt.html.Execute(&html, d); err != nil {
		return Message{}, fmt.Errorf("mail template %s.html.tmpl: %w", kind, err)
	}
	// A subject is one line: line breaks an operator's template leaves
	// become spaces (a header cannot hold them).
	s := strings.Join(strings.Fields(subj.String()), " ")
	return Message{To: to, Subject: s, Text: text.String(), HTML: html.String()}, nil
}
