package postgres

// WithMigrateTo stops Open's migrations after version, to craft a schema
// as an older authex left it.
func WithMigrateTo(o Options, version int) Options {
	o.migrateTo = version
	return o
}
