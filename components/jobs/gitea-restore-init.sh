#!/bin/sh
# uses: job.sh
# The first init container of Gitea's pod (the chart's preExtraInitContainers): puts a staged
# `gitea dump` in place while Gitea is not running, before the chart's own init containers render
# app.ini (which keep the restored secret keys: the chart's config_environment.sh leaves them alone
# in an existing app.ini) and run `gitea migrate` and the admin account's password sync. With
# nothing staged it does nothing. gitea-restore.sh (on the first controller) stages the dump.
#
# The dump's layout (cmd/dump.go): gitea-db.sql (the database as SQL), app.ini, data/ (the
# AppDataPath without the repositories, which are in repos/; with a raw copy of the SQLite file
# taken while Gitea ran, which is not used: the SQL is loaded into a new database instead, as
# Gitea's backup-and-restore docs restore SQLite).
#
# Env: DATA (Gitea's APP_DATA_PATH, the volume), REPO_ROOT (repository.ROOT), DB_PATH (the SQLite
# file: Gitea's default <APP_DATA_PATH>/gitea.db, modules/setting/database.go). sqlite3 comes from
# the image (Gitea's own, the root variant, which installs Alpine's sqlite).

state="$DATA/.cluster-bootstrap"
staged="$state/restore"
[ -f "$staged/ready" ] || exit 0
key=$(cat "$staged/ready")
dump="$staged/dump"
for part in gitea-db.sql data; do
  [ -e "$dump/$part" ] || fail "the staged dump of $key has no $part: not a gitea dump; remove $staged to start Gitea as it was"
done

# The database first, into a new file beside the dump: nothing is moved unless it loads.
rm -f "$staged/gitea.db"
sqlite3 "$staged/gitea.db" <"$dump/gitea-db.sql" || fail "the database of $key does not load into SQLite; Gitea left as it was"
log "loaded the database of $key"

# What the fresh Gitea had goes aside; the dump's data takes its place.
aside="$state/replaced"
rm -rf "$aside"
mkdir -p "$aside"
for entry in "$DATA"/* "$DATA"/.[!.]* "$DATA"/..?*; do
  [ -e "$entry" ] || continue
  case "${entry##*/}" in .cluster-bootstrap | lost+found) continue ;; esac
  mv "$entry" "$aside/"
done
for entry in "$dump"/data/* "$dump"/data/.[!.]* "$dump"/data/..?*; do
  [ -e "$entry" ] || continue
  mv "$entry" "$DATA/"
done
# Queue state is the old process's (and LevelDB files copied while written); Gitea makes new ones.
rm -rf "$DATA/queues"
mkdir -p "$REPO_ROOT"
if [ -d "$dump/repos" ]; then
  for entry in "$dump"/repos/* "$dump"/repos/.[!.]*; do
    [ -e "$entry" ] || continue
    mv "$entry" "$REPO_ROOT/"
  done
fi
mkdir -p "$(dirname "$DB_PATH")"
mv -f "$staged/gitea.db" "$DB_PATH"
printf '%s\n' "$key" >"$state/restored-from"
rm -rf "$staged" "$aside"
log "restored Gitea from $key: $(ls "$REPO_ROOT" | wc -l | tr -d ' ') owners' repositories"
