//go:build !linux

package runtimedefaults

func releaseStartupPages() {}

// ReleaseExecutablePages does nothing outside Linux.
func ReleaseExecutablePages() (int, error) { return 0, nil }
