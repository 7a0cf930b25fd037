package scenario

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestReadUsageOfThisProcess(t *testing.T) {
	// Burn a little CPU so utime is above zero.
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i % 7
	}
	_ = x
	u, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.cpuSeconds <= 0 || u.rssBytes <= 0 || u.hwmBytes < u.rssBytes {
		t.Fatalf("usage = %+v, want CPU > 0 and 0 < RSS <= HWM", u)
	}
	if _, err := readUsage(1 << 30); err == nil {
		t.Fatal("readUsage of a pid that does not exist succeeded")
	}
}

func TestMeterCarriesTotalsAcrossAKill(t *testing.T) {
	m := &meter{last: usage{cpuSeconds: 2, writeBytes: 100, rssBytes: 50}}
	m.peakRSS = 50
	m.retire()
	m.last = usage{cpuSeconds: 1, writeBytes: 10}
	cpu, io := m.totals()
	if cpu != 3 || io != 110 {
		t.Fatalf("totals = %v, %v; want 3 CPU s and 110 bytes across the two processes", cpu, io)
	}
}

func TestTableRatiosAreSluiceOverReference(t *testing.T) {
	w := Quick()["F1"]
	results := []Result{
		{System: "sluice", CPUPerMillion: 1, PeakRSS: 100 << 20, PeakAnon: 60 << 20, DiskPerMillion: 2e6, Served: 10, Received: 10, Outage: true, Drained: true, DrainSeconds: 12},
		{System: "contrib", CPUPerMillion: 4, PeakRSS: 400 << 20, PeakAnon: 300 << 20, DiskPerMillion: 1e6, Served: 10, Received: 7, Duplicates: 3, Outage: true, Drained: false, DrainSeconds: -1},
		{System: "vmagent", Err: errors.New("not installed | run bench/reference/install")},
	}
	got := Table(w, results)
	for _, want := range []string{
		"| sluice | 0 | 1.00 | 100 | 60 | 2.0 | 0 of 10 | 0 | 0 | 12 |",
		"| contrib | 0 | 4.00 | 400 | 300 | 1.0 | 3 of 10 | 3 | 0 | not caught up |",
		"| vmagent | not run: not installed / run bench/reference/install |",
		"| contrib | 0.25 | 0.25 | 0.20 | 2.00 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "| vmagent | n/a") {
		t.Errorf("a system that did not run must not get ratios:\n%s", got)
	}
}

func TestTableWithoutSluiceSaysSo(t *testing.T) {
	got := Table(Quick()["W1"], []Result{{System: "contrib", CPUPerMillion: 4}})
	if !strings.Contains(got, "Sluice was not measured") {
		t.Fatalf("table:\n%s", got)
	}
}
