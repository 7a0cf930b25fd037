// Not generated: ocb writes the other files here and leaves this one.

package main

import "github.com/sluicehq/sluice/internal/runtimedefaults"

// Sluice's runtime defaults apply before the collector starts: the memory
// limit unless GOMEMLIMIT is set, and the release of the pages only start-up
// touched unless SLUICE_KEEP_STARTUP_PAGES is set (see
// internal/runtimedefaults).
func init() { runtimedefaults.Apply() }
