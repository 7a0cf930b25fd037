// Not generated: ocb writes the other files here and leaves this one.

package main

import "github.com/sluicehq/sluice/internal/runtimedefaults"

// Sluice's memory-limit default applies before the collector starts, unless
// GOMEMLIMIT is set (see internal/runtimedefaults).
func init() { runtimedefaults.Apply() }
