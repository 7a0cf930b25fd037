// Not generated: ocb writes the other files here and leaves this one.

package main

import "github.com/sluicehq/sluice/internal/runtimedefaults"

// Sluice's GC and memory-limit defaults apply before the collector starts,
// unless GOGC or GOMEMLIMIT is set (see internal/runtimedefaults).
func init() { runtimedefaults.Apply() }
