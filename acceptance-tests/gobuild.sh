# gobuild.sh — sourced by cluster/build.sh and xpcli/build.sh: builds one Go binary from a
# pinned module directory into $BIN, skipped when $BIN/.<name>.version already names the same
# module@version. The caller defines BIN, TIMES (a log of build times), log and die.

# build <name> <module dir> <package> <stamp> <ldflags>
build() {
  local name="$1" dir="$2" pkg="$3" stamp="$4" ldflags="$5"
  if [[ -x "$BIN/$name" && -f "$BIN/.$name.version" && "$(cat "$BIN/.$name.version")" == "$stamp" ]]; then
    log "$name: cached ($stamp)"
    return 0
  fi
  command -v go >/dev/null || die "go not found in PATH (need Go >= 1.26 to build $name)"
  log "$name: building $pkg ($stamp) ..."
  local t0=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$BIN/.$name.tmp" "$pkg") \
    || die "go build $pkg failed (module dir $dir)"
  mv -f "$BIN/.$name.tmp" "$BIN/$name"
  echo "$stamp" >"$BIN/.$name.version"
  local dt=$((SECONDS - t0))
  log "$name: built in ${dt}s"
  echo "$(date -u +%FT%TZ) $name $stamp ${dt}s" >>"$TIMES"
}
