# Sealed mode: fuzz the record parser and record layer for a few seconds.
echo "== sealed: fuzz FuzzRecordParser"
go test -run '^$' -fuzz '^FuzzRecordParser$' -fuzztime 50000x .
