package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"

	"github.com/skolebuss/skolebuss/vendorkit"
)

// tables names each entity's table ("group" is a word of SQL).
var tables = map[string]string{
	vendorkit.EntityOrg:        "orgs",
	vendorkit.EntityGroup:      "groups",
	vendorkit.EntityPerson:     "persons",
	vendorkit.EntityMembership: "memberships",
}

// Store is a vendorkit.Store in one SQLite file: a table per entity (tenant,
// key, the object's JSON as the event carried it, its content hash and its
// share of the checksum), the position, and the last export checked of
// each tenant. WAL and synchronous=NORMAL: a commit survives the process
// being killed (not a power cut).
type Store struct {
	db *sql.DB
	// prepared statements per entity
	upsert, del, drop map[string]*sql.Stmt
	setPos, setExport *sql.Stmt
	dropExport        *sql.Stmt
}

var _ vendorkit.Store = (*Store)(nil)

// OpenStore opens (creating it if need be) the store in file path.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(5000)", "foreign_keys(OFF)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; the statements are prepared on it
	s := &Store{db: db, upsert: map[string]*sql.Stmt{}, del: map[string]*sql.Stmt{}, drop: map[string]*sql.Stmt{}}
	if err := s.init(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	schema := []string{
		`CREATE TABLE IF NOT EXISTS position (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS exports (tenant TEXT PRIMARY KEY, export_id TEXT NOT NULL, seq INTEGER NOT NULL,
			checksum TEXT NOT NULL, resync INTEGER NOT NULL)`,
	}
	for _, t := range tables {
		schema = append(schema, `CREATE TABLE IF NOT EXISTS `+t+` (tenant TEXT NOT NULL, key TEXT NOT NULL,
			object TEXT NOT NULL, hash INTEGER NOT NULL, mix INTEGER NOT NULL, PRIMARY KEY (tenant, key)) WITHOUT ROWID`)
	}
	for _, q := range schema {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	prep := func(q string) (*sql.Stmt, error) { return s.db.PrepareContext(ctx, q) }
	var err error
	for e, t := range tables {
		if s.upsert[e], err = prep(`INSERT INTO ` + t + ` (tenant, key, object, hash, mix) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant, key) DO UPDATE SET object = excluded.object, hash = excluded.hash, mix = excluded.mix`); err != nil {
			return err
		}
		if s.del[e], err = prep(`DELETE FROM ` + t + ` WHERE tenant = ? AND key = ?`); err != nil {
			return err
		}
		if s.drop[e], err = prep(`DELETE FROM ` + t + ` WHERE tenant = ?`); err != nil {
			return err
		}
	}
	if s.setPos, err = prep(`INSERT INTO position (id, seq) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq`); err != nil {
		return err
	}
	if s.setExport, err = prep(`INSERT INTO exports (tenant, export_id, seq, checksum, resync) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET export_id = excluded.export_id, seq = excluded.seq, checksum = excluded.checksum, resync = excluded.resync`); err != nil {
		return err
	}
	s.dropExport, err = prep(`DELETE FROM exports WHERE tenant = ?`)
	return err
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Position implements vendorkit.Store.
func (s *Store) Position(ctx context.Context) (uint64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM position WHERE id = 1`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(seq), err
}

// Apply implements vendorkit.Store: one transaction for the events and the
// position.
func (s *Store) Apply(ctx context.Context, events []vendorkit.Event) (err error) {
	if len(events) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var pos int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM position WHERE id = 1`).Scan(&pos); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if events[0].Seq <= uint64(pos) {
		return fmt.Errorf("event %d is at or before the position %d", events[0].Seq, pos)
	}
	upsert, del := map[string]*sql.Stmt{}, map[string]*sql.Stmt{}
	for e := range tables {
		upsert[e], del[e] = tx.StmtContext(ctx, s.upsert[e]), tx.StmtContext(ctx, s.del[e])
	}
	for _, ev := range events {
		switch ev.Kind {
		case vendorkit.KindChange:
			c := ev.Change
			if _, ok := tables[c.Entity]; !ok {
				return fmt.Errorf("event %d: unknown entity %q", ev.Seq, c.Entity)
			}
			if c.Op == vendorkit.OpDeleted {
				_, err = del[c.Entity].ExecContext(ctx, ev.Tenant, c.Key)
			} else {
				_, err = upsert[c.Entity].ExecContext(ctx, ev.Tenant, c.Key, string(c.Object),
					int64(vendorkit.ContentHash(c.Object)), int64(c.Mix))
			}
		case vendorkit.KindExportStarted:
			if ev.Boundary.Resync {
				err = s.dropTenant(ctx, tx, ev.Tenant)
			}
		case vendorkit.KindExportCompleted:
			_, err = tx.StmtContext(ctx, s.setExport).ExecContext(ctx, ev.Tenant, ev.Boundary.ExportID, int64(ev.Seq),
				ev.Boundary.Checksum, ev.Boundary.Resync)
		case vendorkit.KindTenantUnlinked:
			if err = s.dropTenant(ctx, tx, ev.Tenant); err == nil {
				_, err = tx.StmtContext(ctx, s.dropExport).ExecContext(ctx, ev.Tenant)
			}
		}
		if err != nil {
			return fmt.Errorf("event %d (%s): %w", ev.Seq, ev.Subject, err)
		}
	}
	if _, err = tx.StmtContext(ctx, s.setPos).ExecContext(ctx, int64(events[len(events)-1].Seq)); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) dropTenant(ctx context.Context, tx *sql.Tx, tenant string) error {
	for e := range tables {
		if _, err := tx.StmtContext(ctx, s.drop[e]).ExecContext(ctx, tenant); err != nil {
			return err
		}
	}
	return nil
}

// Summary implements vendorkit.Store: the records per entity, and the sum
// of their mixes (summed here: SQLite's SUM stops at 2^63).
func (s *Store) Summary(ctx context.Context, tenant string) (vendorkit.Summary, error) {
	sum := vendorkit.Summary{Counts: map[string]int{}}
	for e, t := range tables {
		rows, err := s.db.QueryContext(ctx, `SELECT mix FROM `+t+` WHERE tenant = ?`, tenant)
		if err != nil {
			return sum, err
		}
		n := 0
		for rows.Next() {
			var mix int64
			if err := rows.Scan(&mix); err != nil {
				_ = rows.Close()
				return sum, err
			}
			sum.Checksum.Add(uint64(mix))
			n++
		}
		if err := rows.Close(); err != nil {
			return sum, err
		}
		if err := rows.Err(); err != nil {
			return sum, err
		}
		sum.Counts[e] = n
	}
	return sum, nil
}
