package remotewriteexporter

// The tenants' part of the queue directory: tenant.json, written before a
// tenant's queues so that its data never exists on disk without it, and the
// reopening of tenants at start. See tenants.go for the layout.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// tenantFile is tenant.json.
type tenantFile struct {
	Headers map[string][]string `json:"headers"`
}

const (
	tenantsDir     = "tenants"
	tenantFileName = "tenant.json"
	damagedSuffix  = ".damaged"
)

// createTenant writes a new tenant's file, durably, then opens its queues.
func (e *rwExporter) createTenant(t *tenant) error {
	if _, err := os.Stat(t.dir); err == nil {
		// Only a tenant.json that could not be read leaves a directory no
		// tenant owns, and that one was renamed aside at start.
		return fmt.Errorf("queue directory %s exists but belongs to no known tenant", t.dir)
	}
	if err := os.MkdirAll(t.dir, 0o750); err != nil {
		return err
	}
	// Nothing is queued yet: on any failure the directory goes, so that the
	// next push of the tenant tries afresh.
	err := writeTenantFile(t.dir, t.headers)
	if err == nil {
		// The new directory's entries, so that a power cut cannot keep
		// queued data and lose the directory that names its tenant.
		err = errors.Join(syncDir(filepath.Dir(t.dir)), syncDir(e.dir))
	}
	if err == nil {
		if err = e.openTenantQueues(t); err != nil {
			t.close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(t.dir)
	}
	return err
}

// writeTenantFile writes tenant.json through a temporary file and a rename,
// each synced, so that a crash leaves either no file or the whole one.
func writeTenantFile(dir string, h http.Header) error {
	b, err := json.Marshal(tenantFile{Headers: h})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, tenantFileName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, tenantFileName))
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", tenantFileName, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readTenantFile reads tenant.json; the names are canonicalised again.
func readTenantFile(dir string) (http.Header, error) {
	b, err := os.ReadFile(filepath.Join(dir, tenantFileName))
	if err != nil {
		return nil, err
	}
	var f tenantFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", tenantFileName, err)
	}
	if len(f.Headers) == 0 {
		return nil, fmt.Errorf("%s names no headers", tenantFileName)
	}
	h := http.Header{}
	for n, vs := range f.Headers {
		if !validHeaderName(n) || len(vs) == 0 {
			return nil, fmt.Errorf("%s: header %q is not valid", tenantFileName, n)
		}
		h[http.CanonicalHeaderKey(n)] = vs
	}
	return h, nil
}

// openTenants reopens, at Start, the tenants that still hold data, whatever
// tenants::metadata_keys says now: their data is sent with the headers it
// came with. A tenant whose queues are empty is removed (it is made again
// when its data comes back). A tenant directory whose tenant.json cannot
// be read is renamed aside and its data left unsent: sending it without
// its tenant, or under another, would be worse.
func (e *rwExporter) openTenants() error {
	root := filepath.Join(e.dir, tenantsDir)
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remote_write: queue::directory: %w", err)
	}
	for _, ent := range entries {
		if !ent.IsDir() || strings.HasSuffix(ent.Name(), damagedSuffix) {
			continue
		}
		dir := filepath.Join(root, ent.Name())
		h, err := readTenantFile(dir)
		if errors.Is(err, os.ErrNotExist) && !hasQueues(dir) {
			_ = os.RemoveAll(dir) // a crash between making the directory and writing the file
			continue
		}
		if err != nil {
			e.logger.Error("Tenant queue cannot be attributed to a tenant; left unsent and renamed aside",
				zap.String("dir", dir+damagedSuffix), errField(err))
			if rerr := os.Rename(dir, dir+damagedSuffix); rerr != nil {
				return fmt.Errorf("remote_write: tenant queue %s: %w (and renaming it aside: %v)", dir, err, rerr)
			}
			continue
		}
		key := tenantKey(h)
		t := &tenant{id: ent.Name(), key: key, headers: h, label: tenantLabel(h), dir: dir}
		if err := e.openTenantQueues(t); err != nil {
			t.close()
			return fmt.Errorf("remote_write: tenant %s: %w", t.label, err)
		}
		if e.tenantEmpty(t) {
			t.close()
			if err := os.RemoveAll(dir); err != nil {
				e.logger.Warn("Could not remove an empty tenant queue", zap.String("dir", dir), errField(err))
			}
			continue
		}
		if other := e.tenants.byKey[key]; other != nil {
			// Two directories of one tenant (possible only by hand): both
			// cannot be sent in an order that keeps series in order.
			t.close()
			return fmt.Errorf("remote_write: tenant %s has two queue directories, %s and %s; merge or remove one", t.label, other.dir, dir)
		}
		e.tenants.byKey[key] = t
		e.logger.Info("Tenant queue holds data; sending it with its tenant's headers", zap.String("tenant", t.label))
	}
	return nil
}

// hasQueues says whether a tenant directory holds any queue.
func hasQueues(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true // cannot tell: keep it
	}
	for _, ent := range entries {
		if ent.IsDir() {
			return true
		}
	}
	return false
}

// tenantEmpty says whether none of t's queues, earlier layouts included,
// holds a record.
func (e *rwExporter) tenantEmpty(t *tenant) bool {
	for _, ep := range t.endpoints {
		if len(ep.old) > 0 {
			return false
		}
		for _, q := range ep.shards {
			if q.Stats().Records > 0 {
				return false
			}
		}
	}
	return true
}
