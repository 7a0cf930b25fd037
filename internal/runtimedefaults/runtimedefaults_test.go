package runtimedefaults

import (
	"testing"
	"testing/fstest"
)

func TestDecide(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	limit := func(n int64, ok bool) func() (int64, bool) { return func() (int64, bool) { return n, ok } }
	for _, c := range []struct {
		name  string
		env   map[string]string
		limit func() (int64, bool)
		want  Settings
	}{
		{"nothing set, no container limit", nil, limit(0, false), Settings{ReleaseStartupPages: true}},
		{"nothing set, 512 MiB container", nil, limit(512<<20, true), Settings{MemoryLimit: 483183820, ReleaseStartupPages: true}},
		{"GOGC=off set by the user", map[string]string{"GOGC": "off"}, limit(1<<30, true), Settings{MemoryLimit: 966367641, ReleaseStartupPages: true}},
		{"GOMEMLIMIT set by the user", map[string]string{"GOMEMLIMIT": "200MiB"}, limit(1<<30, true), Settings{ReleaseStartupPages: true}},
	} {
		if got := Decide(env(c.env), c.limit); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"max\n":                 0,
		"":                      0,
		"9223372036854771712\n": 0, // cgroup v1 unlimited
		"536870912\n":           536870912,
		"garbage":               0,
	} {
		got, ok := parseLimit(in)
		if got != want || ok != (want != 0) {
			t.Errorf("parseLimit(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
}

func TestReadCgroupLimit(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, c := range []struct {
		name string
		fs   fstest.MapFS
		self string
		want int64
	}{
		{"systemd unit with MemoryMax", fstest.MapFS{"system.slice/sluice.service/memory.max": file("268435456\n"), "memory.max": file("max\n")},
			"0::/system.slice/sluice.service\n", 268435456},
		{"systemd unit without a limit", fstest.MapFS{"system.slice/sluice.service/memory.max": file("max\n")},
			"0::/system.slice/sluice.service\n", 0},
		{"container, cgroup v2", fstest.MapFS{"memory.max": file("1073741824\n")}, "0::/\n", 1073741824},
		{"container, cgroup v1", fstest.MapFS{"memory/memory.limit_in_bytes": file("536870912\n")},
			"12:memory:/docker/abc\n", 536870912},
		{"cgroup v1 group of its own", fstest.MapFS{"memory/process_api/x/memory.limit_in_bytes": file("402653184\n"),
			"memory/memory.limit_in_bytes": file("9223372036854771712\n")}, "4:memory:/process_api/x\n0::/\n", 402653184},
		{"host, no limit anywhere", fstest.MapFS{}, "0::/init.scope\n", 0},
	} {
		got, ok := readCgroupLimit(c.fs, c.self)
		if got != c.want || ok != (c.want != 0) {
			t.Errorf("%s: %d, %v; want %d", c.name, got, ok, c.want)
		}
	}
}

func TestExecutableSpans(t *testing.T) {
	maps := `00400000-02a00000 r-xp 00000000 fe:01 1234 /usr/bin/sluice
02a00000-05c00000 r--p 02600000 fe:01 1234 /usr/bin/sluice
05c00000-05d00000 rw-p 05800000 fe:01 1234 /usr/bin/sluice
05d00000-05e00000 rw-p 00000000 00:00 0
c000000000-c004000000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000002000-7f0000003000 r--p 00000000 fe:01 77 /opt/my dir/sluice
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
`
	got := executableSpans(maps, "/usr/bin/sluice")
	want := []span{{0x400000, 0x2a00000}, {0x2a00000, 0x5c00000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("spans %x, want %x (read-only mappings of the executable only)", got, want)
	}
	if got := executableSpans(maps, "/opt/my dir/sluice"); len(got) != 1 || got[0] != (span{0x7f0000002000, 0x7f0000003000}) {
		t.Errorf("a path with a space: %x", got)
	}
}

func TestDecideReleasesStartupPagesUnlessKept(t *testing.T) {
	none := func() (int64, bool) { return 0, false }
	if s := Decide(func(string) string { return "" }, none); !s.ReleaseStartupPages {
		t.Error("by default the startup pages are not released")
	}
	keep := func(k string) string {
		if k == KeepStartupPagesEnv {
			return "1"
		}
		return ""
	}
	if s := Decide(keep, none); s.ReleaseStartupPages {
		t.Errorf("%s=1 set, and the startup pages are released all the same", KeepStartupPagesEnv)
	}
}
