package lbaas

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// Store keeps load balancers in an SQLite database (lbaas.db in the
// state directory). A load balancer is one row holding the whole tree
// (listeners, pools, members, health monitors) as JSON: every change to
// a load balancer or any of its children is one transaction replacing
// that row, so a crash leaves either the old tree or the new one.
type Store struct {
	db *sql.DB
}

// OpenStore opens (creating it when needed) the database in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "lbaas.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	const schema = `CREATE TABLE IF NOT EXISTS loadbalancers (
		id TEXT PRIMARY KEY,
		tree TEXT NOT NULL
	)`
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("lbaas store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// IDs returns the ids of the load balancers kept.
func (s *Store) IDs() (map[string]bool, error) {
	rows, err := s.db.Query(`SELECT id FROM loadbalancers`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

func (s *Store) load() ([]*loadBalancer, error) {
	rows, err := s.db.Query(`SELECT id, tree FROM loadbalancers`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var lbs []*loadBalancer
	for rows.Next() {
		var id, tree string
		if err := rows.Scan(&id, &tree); err != nil {
			return nil, err
		}
		lb := new(loadBalancer)
		if err := json.Unmarshal([]byte(tree), lb); err != nil {
			return nil, fmt.Errorf("load balancer %s: %w", id, err)
		}
		lbs = append(lbs, lb)
	}
	return lbs, rows.Err()
}

func (s *Store) put(lb *loadBalancer) error {
	b, err := json.Marshal(lb)
	if err != nil {
		return err
	}
	return s.tx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO loadbalancers (id, tree) VALUES (?, ?)
			ON CONFLICT(id) DO UPDATE SET tree = excluded.tree`, lb.ID, string(b))
		return err
	})
}

func (s *Store) delete(id string) error {
	return s.tx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM loadbalancers WHERE id = ?`, id)
		return err
	})
}

func (s *Store) tx(f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
