//go:build tools

// Package tools pins OpenTofu's CLI (`tofu`) that ../build.sh builds.
package tools

import _ "github.com/opentofu/opentofu/cmd/tofu"
