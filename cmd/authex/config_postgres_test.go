package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheckPostgres(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `
storage:
  driver: postgres
  postgres: { max_conns: 0, connect_timeout: 1ms, schema: "x; DROP TABLE users" }
`)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "-config", bad}, noEnv, &stdout, &stderr); err == nil {
		t.Fatal("config check accepted a bad postgres section")
	}
	for _, want := range []string{
		"storage.postgres.dsn: is required with driver postgres",
		"storage.postgres.max_conns: must be between 1 and 1000, got 0",
		"storage.postgres.connect_timeout: must be between 100ms and 5m, got 1ms",
		"storage.postgres.schema: must be a plain identifier",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stderr.String())
		}
	}

	other := filepath.Join(dir, "driver.yaml")
	writeFile(t, other, "storage: { driver: mysql }\n")
	stderr.Reset()
	if err := run(context.Background(), []string{"config", "check", "-config", other}, noEnv, &stdout, &stderr); err == nil ||
		!strings.Contains(stderr.String(), `storage.driver: must be bolt or postgres, got "mysql"`) {
		t.Fatalf("unknown driver: %v\n%s", err, stderr.String())
	}

	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "storage: { driver: postgres, postgres: { dsn: \"${AUTHEX_PG_DSN}\", schema: authex } }\nsecrets: { kek: \""+testKEK+"\" }\n")
	const dsn = "postgres://authex:s3cret-password@db.internal:5432/authex"
	env := func(k string) string {
		if k == "AUTHEX_PG_DSN" {
			return dsn
		}
		return ""
	}
	stdout.Reset()
	stderr.Reset()
	if err := run(context.Background(), []string{"config", "check", "-config", good}, env, &stdout, &stderr); err != nil {
		t.Fatalf("good postgres config: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), "s3cret-password") {
		t.Fatalf("config check printed the DSN's password:\n%s%s", stdout.String(), stderr.String())
	}
	cfg, err := loadConfig(good, env)
	if err != nil {
		t.Fatal(err)
	}
	if pg := cfg.Storage.Postgres; pg.DSN != dsn || pg.MaxConns != 10 || pg.ConnectTimeout.String() != "5s" {
		t.Fatalf("postgres defaults: %+v", pg)
	}
}
