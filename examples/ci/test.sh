#!/bin/sh
# The test step: through web's forwarded port, web asks app, app asks db.
# Run from this directory once `corral up` has passed (probes included).
set -eu
port=$(corral port web | sed -n 's/^ *80 (guest) => \([0-9]*\) .*/\1/p')
answer=$(curl -fsS "http://127.0.0.1:$port/cgi-bin/items")
echo "$answer"
case $answer in
"web -> app: 3 items from db: gadget 3,gizmo 7,widget 12") echo "ok - web -> app -> db" ;;
*) echo "not ok - web -> app -> db"; exit 1 ;;
esac
# A test may change the machines; reset puts them back for the next one.
corral ssh db -c 'echo "sprocket 1" >>/srv/db/items'
curl -fsS "http://127.0.0.1:$port/cgi-bin/items" | grep -q '4 items' && echo "ok - a change is seen"
corral reset db
curl -fsS "http://127.0.0.1:$port/cgi-bin/items" | grep -q '3 items' && echo "ok - reset undid it"
