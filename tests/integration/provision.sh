#!/usr/bin/env bash
# Provisioning through `corral up` and `corral provision` on two real
# containers of the debian-12 box: shell steps (inline, path, args, env,
# privileged through the box's sudo), a file tree, a top-level Ansible
# playbook across both machines with host keys checked, the run semantics
# across up / up --provision / provision, a failing step's report, and an
# interrupted first plan resumed by the next up.
. "$(dirname "$0")/../lib.sh"

box=$(test_box debian-12)
P=$T/env
mkdir -p "$P/scripts" "$P/conf/bin" "$P/templates"
printf 'echo "path: $1 as $(id -un)" > ~/path.txt\r\n' >"$P/scripts/setup.sh"
printf '#!/bin/sh\necho run\n' >"$P/conf/bin/run.sh"
chmod 0750 "$P/conf/bin/run.sh"
printf '[app]\n' >"$P/conf/app.ini"
chmod 0640 "$P/conf/app.ini"
printf 'release={{ release }} role={{ role }}\n' >"$P/templates/role.j2"
cat >"$P/site.yml" <<'YAML'
- hosts: all
  gather_facts: false
  tasks:
    - template: { src: templates/role.j2, dest: /etc/corral-role, mode: "0644" }
      notify: mark
    - name: group vars keep their YAML types
      assert:
        that:
          - ports | type_debug == "list" and ports[1] == 443
          - tls.on is sameas true and tls.cert is none
          - quote == "it's \\ \"q\""
          - port_text is string and port_text == "8080"
          - ratio == 1.5
  handlers:
    - name: mark
      command: touch /etc/corral-handled
YAML
cat >"$P/corral.yaml" <<'YAML'
version: 1
defaults: { box: corral/debian-12, provider: container, memory: 512M }
machines:
  web:
    provision:
      - shell:
          name: hello
          inline: echo "$GREETING $1 uid=$(id -u)" | tee -a /root/hello.log
          args: [world]
          env: { GREETING: "it's me" }
      - shell: { path: scripts/setup.sh, args: [fast], privileged: false }
      - file: { source: conf, destination: /home/vagrant/conf }
      - file: { source: conf/app.ini, destination: /etc/corral/app.ini }
      - shell: { name: tick, inline: echo tick >> /root/always.log, run: always }
      - shell: { name: extra, inline: touch /root/never, run: never }
  db:
    provision:
      - shell: { inline: "true" }
  flaky:
    autostart: false
    provision:
      - shell: { name: first, inline: echo x >> /root/first.log }
      - shell:
          name: boom
          inline: |
            for i in $(seq 1 25); do echo "out $i"; done
            [ -e /root/fixed ] || { touch /root/fixed; exit 3; }
      - shell: { name: last, inline: touch /root/last }
provision:
  - ansible:
      playbook: site.yml
      groups:
        front: [web]
        back: [db]
        "front:vars": { role: web }
        "back:vars": { role: db }
        "all:vars":
          ports: [80, 443]
          tls: { on: true, cert: null }
          quote: "it's \\ \"q\""
          port_text: "8080"
          ratio: 1.5
      extra_vars: { release: "1.4" }
      become: true
  - ansible: { name: broken, playbook: broken.yml, run: never, groups: { dbs: [db] } }
YAML
cat >"$P/broken.yml" <<'YAML'
- hosts: all
  gather_facts: false
  tasks:
    - name: fine everywhere
      command: "true"
    - name: broken on db
      fail: { msg: "db is broken on purpose" }
      when: inventory_hostname == "db"
    - name: after the failure
      command: "true"
YAML
cd "$P" || exit 1
on_exit '"$CORRAL" -C "$P" destroy -f >/dev/null 2>&1'
g() { "$CORRAL" ssh "$1" -c "$2" 2>&1; }
lines() { g "$1" "sudo cat $2 2>/dev/null | wc -l"; }

expect_out "box add" 0 "corral/debian-12" "$CORRAL" box add "$(dirname "$box")/catalog.json"
run_ok "up creates and provisions both" "$CORRAL" up
check "each step is announced" grep -q 'web: provisioning: step 1/6: hello' <<<"$out"
check "output is prefixed with machine:step" grep -q "^web:hello | it's me world uid=0$" <<<"$out"
check "ansible output is streamed" grep -q '^ansible | PLAY RECAP' <<<"$out"
expect_out "inline: env, args, privileged" 0 "it's me world uid=0" g web 'sudo cat /root/hello.log'
expect_out "path: CRLF script, args, unprivileged" 0 "path: fast as vagrant" g web 'cat ~/path.txt'
expect_out "file tree with modes" 0 "750 640" g web 'stat -c %a ~/conf/bin/run.sh ~/conf/app.ini | xargs'
expect_out "file to a root-only place, through sudo" 0 "root 640" g web 'stat -c "%U %a" /etc/corral/app.ini'
expect_out "no script left in /tmp" 0 "none" g web 'ls /tmp/corral-* 2>/dev/null || echo none'
expect_out "ansible: template with group vars and extra_vars (web)" 0 "release=1.4 role=web" g web 'cat /etc/corral-role'
expect_out "ansible: on db too" 0 "release=1.4 role=db" g db 'cat /etc/corral-role'
expect_out "ansible: become made root the owner" 0 "root" g db 'stat -c %U /etc/corral-role'
expect_out "ansible: the handler ran" 0 "yes" g web 'test -e /etc/corral-handled && echo yes'
check "ansible got the pinned keys" grep -Eq '^(\[[0-9.]+\]:[0-9]+|[0-9.]+) ssh-ed25519 ' .corral/provisioners/ansible/known_hosts
check "the inventory holds both" [ "$(jq -r '.all.hosts | keys | join(" ")' .corral/provisioners/ansible/inventory/provision-step1.json)" = "db web" ]
check "never-step did not run" [ "$(g web 'sudo test -e /root/never && echo yes')" != yes ]
check "state records what ran" [ "$(jq '.provisioned | length' .corral/machines/web/state.json)" -eq 6 ]
check "no plan pending" [ "$(jq '.provision_pending // false' .corral/machines/web/state.json)" = false ]

"$CORRAL" up >/dev/null 2>&1
check "second up: once steps do not run again" [ "$(lines web /root/hello.log)" -eq 1 ]
check "second up: run: always does" [ "$(lines web /root/always.log)" -eq 2 ]
"$CORRAL" up --provision >/dev/null 2>&1
check "up --provision: once steps run again" [ "$(lines web /root/hello.log)" -eq 2 ]
check "up --provision: still no never-step" [ "$(g web 'sudo test -e /root/never && echo yes')" != yes ]
expect_out "provision --provision-with a never step" 0 "web: provisioned" \
	"$CORRAL" provision web --provision-with extra
only_extra() { [ "$(lines web /root/hello.log)" -eq 2 ] && [ "$(g web 'sudo test -e /root/never && echo yes')" = yes ]; }
check "only that step ran" only_extra
"$CORRAL" provision web >/dev/null 2>&1
check "provision NAME: every step again" [ "$(lines web /root/hello.log)" -eq 3 ]
expect_out "provision of an unknown step" 2 "no provision step named \`nope\`" "$CORRAL" provision --provision-with nope
expect_out "provision of an unknown machine" 2 "no machine \`nope\`" "$CORRAL" provision nope

# A failing step: the report, and the next up resuming the first plan.
out=$("$CORRAL" up flaky 2>&1)
rc=$?
check "a failing step fails up" [ "$rc" -eq 1 ]
check "the report names machine, step, exit code" grep -q 'flaky: provision step 2 (boom): exit code 3' <<<"$out"
last20() { grep -q '^    out 25$' <<<"$out" && grep -q '^    out 6$' <<<"$out" && ! grep -q '^    out 5$' <<<"$out"; }
check "the report holds the last 20 lines" last20
check "the plan is pending" [ "$(jq '.provision_pending' .corral/machines/flaky/state.json)" = true ]
expect_out "up resumes the plan" 0 "flaky: provisioning: step 3/3: last" "$CORRAL" up flaky
check "the finished step did not run twice" [ "$(lines flaky /root/first.log)" -eq 1 ]
check "the plan is complete" [ "$(jq '.provision_pending // false' .corral/machines/flaky/state.json)" = false ]

# A top-level step that fails on one host (`broken`, run: never, asked for
# by name): the table, --json and the exit status name the step and that
# machine; the error quotes Ansible's fatal line with its task, not the
# play recap.
out=$("$CORRAL" up --provision-with broken 2>&1)
rc=$?
check "a failed top-level step fails up" [ "$rc" -eq 1 ]
check "the table shows db failed at the step" grep -Eq '^db +failed +[0-9.]+s +[0-9.]+s +#2 broken$' <<<"$out"
check "and web done" grep -Eq '^web +running ' <<<"$out"
check "the error quotes the task and the fatal line" \
	grep -q "task \`broken on db\`: fatal: \[db\]: FAILED! => .*db is broken on purpose" <<<"$out"
check "not the recap" sh -c '! grep -A3 "^corral: error" | grep -q "PLAY RECAP"' <<<"$out"
printf '%s\n' "$out" | grep -A12 '^corral: error' | sed 's/^/#   /' | head -n 8
json=$("$CORRAL" --json provision --provision-with broken 2>/dev/null)
check "--json (provision): db has the failed step" \
	test "$(jq -r 'select(.event == "summary") | .machines[] | select(.machine == "db") | "\(.state) \(.failed_step.name)"' <<<"$json")" = "failed broken"
check "--json: provision seconds are there" \
	test "$(jq -r 'select(.event == "summary") | .machines[] | select(.machine == "web") | (.provision_seconds | type)' <<<"$json")" = number
