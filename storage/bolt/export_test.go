package bolt

import bolt "go.etcd.io/bbolt"

// CheckSweepIndex compares session_sweep with the sessions bucket.
func CheckSweepIndex(s *Store) error {
	return s.view(func(tx *bolt.Tx) error { return checkSweepIndex(tx) })
}
