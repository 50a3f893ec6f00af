#!/usr/bin/env bash
# examples/incus-cluster, run as its README says, against a private LXD
# daemon bootstrapped as a one-member cluster (tests/fakes/lxd-env.sh) and
# reached as a team reaches theirs: over HTTPS, as the remote `ci-cluster`
# of the user's client configuration (its addr, client.crt/key and
# servercerts/ci-cluster.crt), a client certificate the cluster trusts,
# the project `ci`. `up --parallel 4`: four instances, db pinned to node1
# (its `location`), each reached over SSH through a proxy device on the
# member; status -v / --json and global-status show the member. A second
# envfile with the same machine names in a second project (and a remote
# of ~/.config/lxc) does not clash; destroy leaves nothing in either.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fakes/lxd-env.sh"
box=$(test_box tiny)
example incus-cluster
lxd_start
expect_out "box add (README)" 0 "corral/tiny" corral box add "$(dirname "$box")/catalog.json"

# README, "Trust": a client certificate, trusted by the cluster.
export INCUS_CONF=$T/incus-conf
mkdir -p "$INCUS_CONF/servercerts"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -days 1 \
	-subj /CN=ci-runner -keyout "$INCUS_CONF/client.key" -out "$INCUS_CONF/client.crt" 2>/dev/null
check "the cluster trusts the client certificate" lxd_trust "$INCUS_CONF/client.crt"
# README, "Remote": what `incus remote add ci-cluster URL` writes.
cp "$LXD_CLUSTER_CERT" "$INCUS_CONF/servercerts/ci-cluster.crt"
printf 'default-remote: local\nremotes:\n  ci-cluster:\n    addr: %s\n    protocol: lxd\n    auth_type: tls\n' \
	"$LXD_HTTPS" >"$INCUS_CONF/config.yml"
# README, "Project": the team's project, its default profile a root disk
# and a NIC on the cluster's network.
project() {
	lxd_rest POST /1.0/projects "{\"name\": \"$1\"}" | jq -e '.status_code == 200' >/dev/null &&
		lxd_rest PUT "/1.0/profiles/default?project=$1" "{\"devices\": {
		  \"root\": {\"type\": \"disk\", \"path\": \"/\", \"pool\": \"default\"},
		  \"eth0\": {\"type\": \"nic\", \"name\": \"eth0\", \"network\": \"$LXD_BRIDGE\"}}}" |
		jq -e '.status_code == 200' >/dev/null
}
check "project ci" project ci

t0=$(date +%s.%N)
out=$(corral up --parallel 4 2>&1)
rc=$?
t=$(echo "$(date +%s.%N) - $t0" | bc)
check "corral up --parallel 4: four machines on the cluster" test "$rc" = 0 -a "$(grep -c ': ssh ready' <<<"$out")" = 4 ||
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
printf '# up --parallel 4 of 4 machines (image upload included): %.1f s\n' "$t"
in_project() { lxd_rest GET "/1.0/instances?project=$1&recursion=1" | jq -r ".metadata[] | $2"; }
check "they are instances of project ci" test "$(in_project ci .name | grep -c '^crl-[0-9a-f]\{8\}-\(app-[123]\|db\)$')" = 4
check "db runs on the member it is pinned to" test "$(in_project ci 'select(.name | endswith("-db")) | .location')" = "$LXD_MEMBER"
check "state records the member" test "$(jq -r .location .corral/machines/db/state.json)" = "$LXD_MEMBER"
check "state records the https remote" test "$(jq -r .incus_remote .corral/machines/app-2/state.json)" = "$LXD_HTTPS"
ssh_port=$(jq -r .ssh_port .corral/machines/db/state.json)
check "SSH goes through a proxy device on the member" \
	test "$(in_project ci 'select(.name | endswith("-db")) | .devices["corral-ssh"].listen')" = "tcp:127.0.0.1:$ssh_port"
expect_out "corral ssh db (through the forward)" 0 "db" corral ssh db -c 'cat /etc/motd'
expect_out "the provisioners ran on each" 0 "app-3" corral ssh app-3 -c 'cat /etc/motd'
expect_out "corral status -v: the member" 0 "cluster member: $LXD_MEMBER" corral -v status db
check "corral status --json: the member" test "$(corral status --json | jq -r '[.[] | select(.member == "node1")] | length')" = 4
gs=$(corral global-status)
gs_ok() { grep -qE "^db +incus +running +$LXD_MEMBER " <<<"$gs"; }
check "corral global-status: the member" gs_ok
gs_ok || printf "%s\n" "$gs" | sed "s/^/#   /"

# A second CI job: the same machine names in another project, through a
# remote of the lxc client's configuration (~/.config/lxc).
check "project ci-b" project ci-b
mkdir -p "$T/job-b" "$T/user/.config/lxc/servercerts"
cp "$INCUS_CONF/client.crt" "$INCUS_CONF/client.key" "$T/user/.config/lxc/"
cp "$LXD_CLUSTER_CERT" "$T/user/.config/lxc/servercerts/lab.crt"
printf 'remotes:\n  lab: { addr: "%s", protocol: lxd }\n' "$LXD_HTTPS" >"$T/user/.config/lxc/config.yml"
sed -e 's/remote: ci-cluster/remote: lab/' -e 's/project: ci /project: ci-b /' -e 's/count: 3/count: 1/' \
	corral.yaml >"$T/job-b/corral.yaml"
job_b() { (cd "$T/job-b" && env -u INCUS_CONF HOME="$T/user" "$CORRAL" "$@" 2>&1); }
expect_out "a second envfile, same names, project ci-b" 0 "db: ssh ready" job_b up --parallel 2
check "ci-b has its own two instances" test "$(in_project ci-b .name | wc -l)" = 2
check "ci still has its four" test "$(in_project ci .name | wc -l)" = 4
expect_out "its db is its own" 0 "db" job_b ssh db -c 'cat /etc/motd; hostname'
expect_out "destroy of the second job" 0 "db: destroyed" job_b destroy -f
check "ci-b is empty: no instance" test -z "$(in_project ci-b .name)"
check "ci-b is empty: no image" test "$(lxd_rest GET '/1.0/images?project=ci-b' | jq '.metadata | length')" = 0
check "ci is untouched" test "$(in_project ci .status | grep -c Running)" = 4

# Errors name what was looked for, or carry the server's message.
mkdir -p "$T/bad" && cd "$T/bad"
printf 'machines:\n  m: { box: corral/tiny, provider: incus, provider_options: { incus: { remote: nosuch } } }\n' >corral.yaml
expect_out "an unknown remote name says where corral looked" 1 "no remote nosuch in the client configuration" corral up
printf '  images: { addr: "https://images.example.org", protocol: simplestreams }\n' >>"$INCUS_CONF/config.yml"
printf 'machines:\n  m: { box: corral/tiny, provider: incus, provider_options: { incus: { remote: images } } }\n' >corral.yaml
expect_out "an image server is no remote to run machines on" 1 "remote images is a simplestreams image server" corral up
printf 'machines:\n  m: { box: corral/tiny, provider: incus, provider_options: { incus: { remote: ci-cluster, project: ci, target: node9 } } }\n' >corral.yaml
expect_out "a target that is no member: the server's message" 1 "node9" corral up
corral destroy -f >/dev/null 2>&1
cd "$EX"

expect_out "corral destroy -f" 0 "app-1: destroyed" corral destroy -f
check "ci is empty: no instance" test -z "$(in_project ci .name)"
check "ci is empty: no image" test "$(lxd_rest GET '/1.0/images?project=ci' | jq '.metadata | length')" = 0
check "no SSH forward is left listening" sh -c "! ss -ltnH 'sport = :$ssh_port' | grep -q ."
check "global-status forgets them" bash -c "! '$CORRAL' global-status | grep -q '$EX'"
