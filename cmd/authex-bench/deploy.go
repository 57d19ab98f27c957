package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authex/authex/internal/measure"
)

// deployment is what one block of rows drives: one or two authex processes
// on one store, and, on PostgreSQL, the database backends that serve them.
type deployment struct {
	label   string // the table's store column: "bbolt", "PostgreSQL x1", ...
	servers []*server
	pg      *pgBackends // nil on bbolt
}

// base is the server worker w talks to: with two instances the load
// generator splits its connections between them (no balancer).
func (d *deployment) base(w int) string { return d.servers[w%len(d.servers)].base }

func (d *deployment) stop() {
	for _, s := range d.servers {
		s.stop()
	}
}

// cpuSample is the CPU time, in clock ticks, of every process that serves
// requests: the authex processes and our PostgreSQL backends, by pid.
type cpuSample map[int]int64

func (d *deployment) sampleCPU() cpuSample {
	s := cpuSample{}
	for _, srv := range d.servers {
		if _, t, err := measure.ProcessCPU(srv.cmd.Process.Pid); err == nil {
			s[srv.cmd.Process.Pid] = t
		}
	}
	if d.pg != nil {
		for _, pid := range d.pg.pids() {
			if _, t, err := measure.ProcessCPU(pid); err == nil {
				s[-pid] = t // negative: a database backend
			}
		}
	}
	return s
}

// cpuSince is the CPU used between two samples, in total and by the
// database backends. A backend that appeared meanwhile counts from zero; one
// that went away loses what it used (the pools keep their connections, so
// this stays rare).
func cpuSince(before, after cpuSample) (total, db time.Duration) {
	for pid, t := range after {
		d := time.Duration(t-before[pid]) * time.Second / measure.ClockTicks
		total += d
		if pid < 0 {
			db += d
		}
	}
	return total, db
}

// pgBackends finds the PostgreSQL backends of one run: every authex
// instance connects with the run's own application_name (set in the DSN it
// is given), and pg_stat_activity lists the backends by it. The bench's
// own connection uses another name, so its queries are not counted, nor
// are other clients of a shared server.
type pgBackends struct {
	conn    *pgx.Conn
	appName string
}

func (b *pgBackends) pids() []int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pids, err := measure.BackendPIDs(ctx, b.conn, b.appName)
	if err != nil {
		return nil
	}
	return pids
}

// checkProcReadable fails early when the backends' /proc entries cannot be
// read (PostgreSQL on another host, or hidepid): the CPU column would
// silently leave the database out.
func (b *pgBackends) checkProcReadable() error {
	pids := b.pids()
	if len(pids) == 0 {
		return fmt.Errorf("no backend with application_name %q in pg_stat_activity", b.appName)
	}
	for _, pid := range pids {
		if _, _, err := measure.ProcessCPU(pid); err != nil {
			return errors.Join(fmt.Errorf("cannot read the CPU time of PostgreSQL backend %d (the server must run on this host, with /proc readable)", pid), err)
		}
	}
	return nil
}
