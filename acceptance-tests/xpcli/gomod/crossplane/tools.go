//go:build tools

// Package tools pins the Crossplane CLI (`crossplane`) that ../../build.sh builds.
// Since Crossplane v2.3 the CLI lives in its own module, github.com/crossplane/cli/v2
// (github.com/crossplane/crossplane/v2 v2.3.0 and later no longer has cmd/crank).
package tools

import _ "github.com/crossplane/cli/v2/cmd/crossplane"
