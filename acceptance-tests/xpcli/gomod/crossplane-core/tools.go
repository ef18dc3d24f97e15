//go:build tools

// Package tools pins the Crossplane core binary that ../../build.sh builds as
// `crossplane-core`. The CLI's `render` runs the composition engine of core
// (`crossplane internal render`) through --crossplane-binary instead of a
// Docker image.
package tools

import _ "github.com/crossplane/crossplane/v2/cmd/crossplane"
