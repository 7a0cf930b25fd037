package systems

import (
	"fmt"
	"path/filepath"
)

// sluice is Sluice itself (bin/sluice, built by `make build`): the
// prometheus receiver straight into the remote_write exporter, with the
// exporter's defaults — remote write 1.0, 4 shards, 2,000 samples per
// request, the disk queue (1 GiB, fsync every second, drop oldest when
// full) under Dir/sluice-queue. No batch processor: each scrape already
// arrives as one batch, which the exporter splits per shard. Own telemetry
// and health check as the contrib reference has them.
type sluice struct{}

func (sluice) Name() string { return "sluice" }

func (sluice) Available() error { _, err := sluiceScrape{}.bin(); return err }

func (sluice) Version() string { return sluiceScrape{}.Version() }

func (s sluice) Start(spec Spec) (*Process, error) {
	if err := spec.validate(true); err != nil {
		return nil, err
	}
	bin, err := sluiceScrape{}.bin()
	if err != nil {
		return nil, err
	}
	exporter := fmt.Sprintf(`  remote_write:
    endpoint: %q
    queue:
      directory: %q
`, spec.RemoteWriteURL, filepath.Join(spec.Dir, "sluice-queue"))
	return startCollector(spec, s.Name(), bin, "", "remote_write", exporter)
}
