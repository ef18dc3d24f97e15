//go:build tools

// Package tools pins function-patch-and-transform, the composition function that
// ../../build.sh builds and the golden-path tests start locally (--insecure).
package tools

import _ "github.com/crossplane-contrib/function-patch-and-transform"
