package storage

import "context"

// Secret is one value stored with EnsureSecret.
type Secret struct {
	Name  string
	Value []byte
}

// Exporter is an optional capability of a Store: the one listing the Store
// interface lacks to copy every record to another backend (`authex export`).
// Users, identities, sessions, keys and audit events are read through Store
// itself. Both bundled backends implement it.
type Exporter interface {
	// ListSecrets returns every secret, by name.
	ListSecrets(ctx context.Context) ([]Secret, error)
}
