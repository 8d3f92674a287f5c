# kb-build --embed and --qdrant against t/kb_server.py: the OpenAI and
# TEI embedding shapes, batching across documents, retries, dimension
# errors, incremental builds that embed only what changed, and the copy
# to Qdrant (collection, payload indexes, points, stale points, a size
# mismatch, an outage).  It runs build/kb-build, not nginx, so it is plain
# Test::More (it runs the same under both Test::Nginx runners).

use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use SupportAgent::Test ();

my $repo = SupportAgent::Test::repo_root();
# SA_KB_BUILD: another build of it (with ASan, say)
my $kb_build = $ENV{SA_KB_BUILD} || "$repo/build/kb-build";

plan skip_all => "build/kb-build is not built (make build)" unless -x $kb_build;

# the server checks every request against the published schemas (the
# "valid" of its records; make's validate-requests checks its record files
# again)
delete $ENV{$_} for qw(OPENAI_API_KEY QDRANT_API_KEY);

my $port = SupportAgent::Test::start_kb_server();
my $url = "http://127.0.0.1:$port";
my $http = HTTP::Tiny->new(timeout => 10);
my $json = JSON::PP->new->canonical;

my $dir = tempdir('sa-kbb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
system('cp', '-r', "$repo/kb-build/sample-helpcenter", "$dir/hc") == 0
    or BAIL_OUT('cannot copy the sample help center');

my ($rc, $out, $err);

like(`$kb_build --help`, qr/--embed URL.*--qdrant URL/s, '--help names the options');

# ---------------------------------------------------------------------
# OpenAI-compatible embeddings

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/a.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/v1", '--embed-model', 'test-embed', '--quiet');
is($rc, 0, 'openai: built') or diag($err);
my ($chunks) = $out =~ /^  chunks +(\d+)/m;
ok($chunks > 32, "openai: $chunks chunks, more than one batch");
like($out, qr/^  embedded   $chunks chunks in @{[ int(($chunks + 31) \/ 32) ]} requests, [\d.]+ s \(64 dimensions, float32; $chunks vectors in the KB\)$/m,
     'openai: every chunk embedded, in batches of 32');

{
    my @r = records('embeddings');
    is(scalar(@r), int(($chunks + 31) / 32), 'openai: one request per batch');
    ok(!grep({ !$_->{valid} } @r), 'openai: every request valid against the schema')
        or diag(explain([map { $_->{errors} } @r]));
    is($r[0]{path}, '/v1/embeddings', 'openai: /embeddings added to the base URL');
    is_deeply([map { scalar @{ $_->{body}{input} } } @r[0 .. $#r - 1]], [(32) x $#r],
              'openai: full batches, across documents');
    is($r[0]{body}{model}, 'test-embed', 'openai: the model');
    is($r[0]{body}{encoding_format}, 'float', 'openai: encoding_format float');
    ok(!exists $r[0]{body}{dimensions}, 'openai: no dimensions unless --embed-dim');
    like($r[0]{body}{input}[0], qr/^[^\n]+\n/, 'openai: the prefix (title) comes first');
    ok(!exists $r[0]{headers}{authorization}, 'openai: no key in the environment, none sent');
}

is(meta("$dir/a.kb", 'embed_model'), 'test-embed', 'openai: meta embed_model');
is(meta("$dir/a.kb", 'embed_dim'), '64', 'openai: meta embed_dim');
is(meta("$dir/a.kb", 'embed_encoding'), 'float32', 'openai: meta embed_encoding');

# --embed-dim: asked for, and another setting is a full build

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/a.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/v1/embeddings", '--embed-model', 'test-embed',
                       '--embed-dim', '48', '--embed-int8', '--quiet');
is($rc, 0, 'embed-dim: built') or diag($err);
like($out, qr/full build: embeddings/, 'embed-dim: other settings, a full build');
like($out, qr/\(48 dimensions, int8; $chunks vectors/, 'embed-dim: 48, int8');
{
    my @r = records('embeddings');
    is($r[0]{body}{dimensions}, 48, 'embed-dim: "dimensions" sent');
    is($r[0]{path}, '/v1/embeddings', 'embed-dim: a URL ending in /embeddings is kept');
}

# ---------------------------------------------------------------------
# TEI

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/t.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/embed", '--quiet');
is($rc, 0, 'tei: built') or diag($err);
like($out, qr/embedded   $chunks chunks in \d+ requests/, 'tei: every chunk embedded');
{
    my @r = records('embed');
    ok(@r > 1 && !grep({ !$_->{valid} } @r), 'tei: requests valid against the schema');
    is_deeply([sort keys %{ $r[0]{body} }], [qw(inputs normalize truncate)],
              'tei: inputs, normalize, truncate');
    ok($r[0]{body}{normalize} && $r[0]{body}{truncate}, 'tei: normalize and truncate true');
    ok(!grep({ @{ $_->{body}{inputs} } > 32 } @r), 'tei: at most 32 inputs per request');
}
is(meta("$dir/t.kb", 'embed_model'), "$url/embed", 'tei: the URL names the model');

# ---------------------------------------------------------------------
# retries: a 503 before every answer, one with retry-after

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/r.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/fail=503:1/v1", '--embed-model', 'test-embed',
                       '--embed-batch', '100');
is($rc, 0, 'retry: built after 503s') or diag($err);
{
    my $batches = int(($chunks + 99) / 100);
    my @r = records('embeddings');
    is(scalar(@r), 2 * $batches, 'retry: each batch asked twice');
    is_deeply([map { $_->{status} } @r], [(503, 200) x $batches], 'retry: 503, then 200');
    like($err, qr{POST http://127\.0\.0\.1:$port/fail=503:1/v1/embeddings: HTTP 503, retrying in 0\.5 s},
         'retry: told on stderr, with backoff');
    like($out, qr/in @{[ 2 * $batches ]} requests/, 'retry: the report counts the attempts');
}

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/r2.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/fail=429:1,ra=1/v1", '--embed-model', 'test-embed',
                       '--embed-batch', '500', '--quiet');
is($rc, 0, 'retry-after: built') or diag($err);
like($err, qr/HTTP 429, retrying in 1\.0 s/, 'retry-after: honoured');

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/r3.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/fail=500/v1", '--embed-model', 'test-embed',
                       '--retries', '1', '--quiet');
is($rc, 1, 'always 500: fails');
like($err, qr{--embed: POST http://127\.0\.0\.1:$port/fail=500/v1/embeddings: HTTP 500: },
     'always 500: the error names the URL and quotes the service');
ok(!-e "$dir/r3.kb", 'always 500: no KB written');
is(scalar(records('embeddings')), 2, 'always 500: --retries 1: two attempts');

# ---------------------------------------------------------------------
# dimensions

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/d.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/dim=32/v1", '--embed-model', 'test-embed',
                       '--embed-dim', '48', '--quiet');
is($rc, 1, 'dim: an answer of another size than asked fails');
like($err, qr/embeddings of 32 dimensions, 48 were asked for/, 'dim: the error says so');

# an incremental build: answers must have the KB's dimension

kb('index', '--out', "$dir/d.kb", '--markdown', "$dir/hc", '--embed', "$url/v1",
   '--embed-model', 'test-embed', '--quiet');
my $built = meta("$dir/d.kb", 'built_ms');
append("$dir/hc/billing/gift-cards.md", "\n\nGift cards never expire.\n");
($rc, $out, $err) = kb('index', '--out', "$dir/d.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/dim=32/v1", '--embed-model', 'test-embed', '--quiet');
is($rc, 1, 'dim: an incremental build given vectors of another size fails');
like($err, qr/vectors of 32 dimensions, but the knowledge base ".*d\.kb" has vectors of 64 .*--rebuild/,
     'dim: the error says what the KB has, and --rebuild');
is(meta("$dir/d.kb", 'built_ms'), $built, 'dim: the KB is left as it was');

# ---------------------------------------------------------------------
# incremental: only the chunks of changed documents are embedded

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/d.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/v1", '--embed-model', 'test-embed', '--quiet');
is($rc, 0, 'incremental: built') or diag($err);
like($out, qr/wrote .*\(incremental\)/, 'incremental: PATH reused');
like($out, qr/changed 1, unchanged \d+/, 'incremental: one document changed');
{
    my ($new) = $out =~ /^  chunks .*\(new (\d+),/m;
    my @r = records('embeddings');
    is(scalar(@r), 1, 'incremental: one request');
    is(scalar @{ $r[0]{body}{input} }, $new, "incremental: its $new new chunks only");
    ok(!grep({ !/^Gift cards/ } @{ $r[0]{body}{input} }), 'incremental: all from the changed article');
    like($out, qr/embedded   $new chunks in 1 requests, .*; \d+ vectors in the KB/,
         'incremental: reported');
    my ($total) = $out =~ /^  chunks +(\d+)/m;
    like($out, qr/; $total vectors in the KB/, 'incremental: the others kept theirs');
}

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/d.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/v1", '--embed-model', 'test-embed', '--quiet');
like($out, qr/up to date/, 'nothing changed: up to date');
is(scalar(records('embeddings')), 0, 'nothing changed: no request');

# ---------------------------------------------------------------------
# Qdrant

system('rm', '-rf', "$dir/hc");
system('cp', '-r', "$repo/kb-build/sample-helpcenter", "$dir/hc");

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/q.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/v1", '--embed-model', 'test-embed',
                       '--qdrant', $url, '--collection', 'helpcenter', '--quiet');
is($rc, 0, 'qdrant: synced') or diag($err);
like($out, qr/^  qdrant     $chunks points \($chunks with dense vectors\) in "helpcenter" at \Q$url\E \(created\), 5 payload indexes made/m,
     'qdrant: reported');
{
    my @r = records();
    my @q = grep { ($_->{service} // '') =~ /^qdrant/ } @r;
    ok(!grep({ defined $_->{valid} && !$_->{valid} } @q), 'qdrant: requests valid against the schema')
        or diag(explain([map { $_->{errors} } @q]));
    my ($create) = grep { $_->{service} eq 'qdrant-create_collection' } @q;
    is_deeply($create->{body},
              { vectors => { dense => { size => 64, distance => 'Cosine' } },
                sparse_vectors => { sparse => { modifier => 'idf' } } },
              'qdrant: collection created with dense and sparse vectors');
    is_deeply([sort map { $_->{body}{field_name} . ':' . $_->{body}{field_schema} }
               grep { $_->{service} eq 'qdrant-create_field_index' } @q],
              [sort map { "$_:keyword" } qw(doc_id product_area version tier region)],
              'qdrant: keyword payload indexes');
    my @up = grep { $_->{service} eq 'qdrant-upsert_points' } @q;
    is(scalar(@up), int(($chunks + 63) / 64), 'qdrant: upserts of 64 points');
    like($up[0]{path}, qr/\?wait=true$/, 'qdrant: upserts wait');
    my ($del) = grep { $_->{service} eq 'qdrant-delete_points' } @q;
    is_deeply($del->{body}{filter}{must_not},
              [{ key => 'build', match => { value => 0 + meta("$dir/q.kb", 'built_ms') } }],
              'qdrant: points of other builds deleted');
}

my $info = qdrant('GET', '/collections/helpcenter')->{result};
is($info->{points_count}, $chunks, 'qdrant: one point per chunk');

{
    my $p = qdrant('POST', '/collections/helpcenter/points/scroll',
                   { limit => 1000, with_payload => JSON::PP::true, with_vector => JSON::PP::true })
        ->{result}{points};
    my ($gift) = grep { $_->{payload}{doc_id} eq 'billing/gift-cards' } @$p;
    ok($gift, 'qdrant: a point of billing/gift-cards');
    like($gift->{id}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
         'qdrant: a UUID id (version 5 bits)');
    is_deeply([sort keys %{ $gift->{vector} }], [qw(dense sparse)], 'qdrant: dense and sparse vectors');
    is(scalar @{ $gift->{vector}{dense} }, 64, 'qdrant: the dense vector');
    ok(@{ $gift->{vector}{sparse}{indices} } > 0, 'qdrant: the sparse vector');
    my $pl = $gift->{payload};
    is($pl->{product_area}, 'billing', 'qdrant: payload product_area');
    is($pl->{doc_type}, 'faq', 'qdrant: payload doc_type');
    like($pl->{url}, qr{^https://help\.northwind-outfitters\.com/billing/gift-cards#.+$},
         'qdrant: payload url, with the anchor');
    ok(defined $pl->{title} && defined $pl->{text} && $pl->{chunk} =~ /^\d+$/,
       'qdrant: payload title, text, chunk');
    is($pl->{build}, 0 + meta("$dir/q.kb", 'built_ms'), 'qdrant: payload build');
    ok(!exists $pl->{version}, 'qdrant: empty strings left out');
    my %ids;
    $ids{ $_->{id} }++ for @$p;
    is(scalar(keys %ids), $chunks, 'qdrant: ids are distinct');
}

# the sparse vectors are our BM25: a one-term query scores (k1 + 1) times
# kb-build search's score ("refund": MurmurHash3 index 517146909)
{
    my $res = qdrant('POST', '/collections/helpcenter/points/query',
                     { query => { indices => [517146909], values => [1] }, using => 'sparse',
                       limit => 20, with_payload => ['doc_id'] })->{result}{points};
    my %best;
    for (@$res) {
        my $d = $_->{payload}{doc_id};
        $best{$d} = $_->{score} if !defined $best{$d} || $_->{score} > $best{$d};
    }
    open my $q, '>', "$dir/q.jsonl" or die $!;
    print $q qq({"_id": "q1", "text": "refund"}\n);
    close $q;
    my ($src, $run) = kb('search', '--kb', "$dir/q.kb", '--queries', "$dir/q.jsonl",
                         '--k', '3', '--chunk-k', '50');
    my @lines = grep { /^q1 / } split /\n/, $run;
    ok(@lines >= 3, 'sparse: kb-build search ranks documents');
    my $same = @lines;
    for (@lines) {
        my (undef, undef, $doc, undef, $score) = split / /;
        $same-- if defined $best{$doc} && abs($best{$doc} / 1.9 - $score) < 1e-4 * $score;
    }
    is($same, 0, 'sparse: Qdrant scores / 1.9 are kb-build search\'s BM25');
}

# a rebuild without a document: its points go

unlink "$dir/hc/billing/gift-cards.md" or die $!;
sleep 0.01;
reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/q.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/v1", '--embed-model', 'test-embed',
                       '--qdrant', $url, '--collection', 'helpcenter', '--quiet');
is($rc, 0, 'qdrant, removed document: synced') or diag($err);
my ($left) = $out =~ /^  chunks +(\d+)/m;
ok($left < $chunks, "qdrant, removed document: $left chunks left");
like($out, qr/$left points .* at \Q$url\E, 0 payload indexes made/,
     'qdrant, removed document: the collection and its indexes are reused');
is(qdrant('GET', '/collections/helpcenter')->{result}{points_count}, $left,
   'qdrant, removed document: points = chunks');
is(qdrant('POST', '/collections/helpcenter/points/count',
          { filter => { must => [{ key => 'doc_id', match => { value => 'billing/gift-cards' } }] },
            exact => JSON::PP::true })->{result}{count}, 0,
   'qdrant, removed document: its points are gone');

# another size: an error that says to use another collection

($rc, $out, $err) = kb('index', '--out', "$dir/q48.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/v1", '--embed-model', 'test-embed', '--embed-dim', '48',
                       '--qdrant', $url, '--collection', 'helpcenter', '--quiet');
is($rc, 1, 'qdrant, another size: fails');
like($err, qr/collection "helpcenter" has dense vectors of size 64, the KB's have 48 .*new --collection/,
     'qdrant, another size: the error says so');
like($err, qr/q48\.kb was written, but not copied to Qdrant/, 'qdrant, another size: the KB is written');
ok(-f "$dir/q48.kb", 'qdrant, another size: the KB file is there');

# a KB without vectors: a collection of sparse vectors only

reset_server();
($rc, $out, $err) = kb('index', '--out', "$dir/s.kb", '--markdown', "$dir/hc",
                       '--qdrant', "$url/", '--collection', 'bm25 only', '--quiet');
is($rc, 0, 'qdrant, no vectors: synced') or diag($err);
{
    my ($create) = grep { $_->{service} eq 'qdrant-create_collection' } records();
    is_deeply($create->{body}, { sparse_vectors => { sparse => { modifier => 'idf' } } },
              'qdrant, no vectors: no dense vector');
    is($create->{path}, '/collections/bm25%20only', 'qdrant, no vectors: the name escaped');
    like($out, qr/\(0 with dense vectors\)/, 'qdrant, no vectors: points without dense');
}

# outages

my $closed = free_port();
($rc, $out, $err) = kb('index', '--out', "$dir/o.kb", '--markdown', "$dir/hc",
                       '--qdrant', "http://127.0.0.1:$closed", '--collection', 'x',
                       '--retries', '1', '--quiet');
is($rc, 1, 'qdrant down: fails');
like($err, qr{GET http://127\.0\.0\.1:$closed/collections/x: .*\(2 attempts\)}, 'qdrant down: the URL and attempts');
like($err, qr/o\.kb was written, but not copied to Qdrant .* run again/, 'qdrant down: the KB is written');
ok(-f "$dir/o.kb", 'qdrant down: the KB file is there');

($rc, $out, $err) = kb('index', '--out', "$dir/o.kb", '--markdown', "$dir/hc",
                       '--qdrant', "$url/fail=503", '--collection', 'x', '--retries', '1',
                       '--quiet');
is($rc, 1, 'qdrant 503: fails');
like($err, qr{qdrant: GET http://127\.0\.0\.1:$port/fail=503/collections/x: HTTP 503}, 'qdrant 503: the status');

# ---------------------------------------------------------------------
# keys: sent in their headers, never printed

{
    my ($kpid, $kport) = SupportAgent::Test::start_server('kb_server', require_key => 'sk-secret-1',
                                                          record_suffix => '-kb-key');
    my $kurl = "http://127.0.0.1:$kport";

    local $ENV{OPENAI_API_KEY} = 'sk-secret-1';
    local $ENV{MY_QDRANT_KEY} = 'sk-secret-1';
    ($rc, $out, $err) = kb('index', '--out', "$dir/k.kb", '--markdown', "$dir/hc",
                           '--embed', "$kurl/v1", '--embed-model', 'test-embed',
                           '--qdrant', $kurl, '--collection', 'k',
                           '--qdrant-key-env', 'MY_QDRANT_KEY', '--quiet');
    is($rc, 0, 'keys: accepted') or diag($err);

    $ENV{OPENAI_API_KEY} = 'sk-wrong-2';
    ($rc, $out, $err) = kb('index', '--out', "$dir/k2.kb", '--markdown', "$dir/hc",
                           '--embed', "$kurl/v1", '--embed-model', 'test-embed', '--quiet');
    is($rc, 1, 'keys: a wrong key fails');
    like($err, qr/HTTP 401/, 'keys: 401');
    unlike($out . $err, qr/sk-wrong|sk-secret/, 'keys: never printed');

    ($rc, $out, $err) = kb('index', '--out', "$dir/k2.kb", '--markdown', "$dir/hc",
                           '--embed', "$kurl/v1", '--embed-model', 'test-embed',
                           '--embed-key-env', 'NO_SUCH_VARIABLE_SET', '--quiet');
    is($rc, 2, 'keys: a named variable that is not set is a usage error');

    SupportAgent::Test::stop_server($kpid);
}

# usage

($rc, $out, $err) = kb('index', '--out', "$dir/u.kb", '--markdown', "$dir/hc",
                       '--embed', "$url/v1");
is($rc, 2, 'usage: an OpenAI URL needs --embed-model');
($rc, $out, $err) = kb('index', '--out', "$dir/u.kb", '--markdown', "$dir/hc",
                       '--qdrant', $url);
is($rc, 2, 'usage: --qdrant needs --collection');

done_testing();


# runs kb-build; (exit code, stdout, stderr)
sub kb {
    my @args = @_;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/stdout" or POSIX::_exit(126);
        open STDERR, '>', "$dir/stderr" or POSIX::_exit(126);
        exec $kb_build, @args or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $code = $? >> 8;
    return ($code, slurp("$dir/stdout"), slurp("$dir/stderr"));
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return scalar <$fh>;
}

sub append {
    my ($f, $text) = @_;
    open my $fh, '>>', $f or die "$f: $!";
    print $fh $text;
    close $fh;
}

sub meta {
    my ($kb, $key) = @_;
    my (undef, $stats) = kb('stats', '--kb', $kb);
    return $stats =~ /^\Q$key\E (.*)$/m ? $1 : undef;
}

# the server's records (of one service), oldest first
sub records {
    my ($service) = @_;
    my $q = defined $service ? "?service=$service" : '';
    my $res = $http->get("$url/_requests$q");
    die "GET /_requests: $res->{status}" unless $res->{success};
    return @{ decode_json($res->{content}) };
}

sub reset_server {
    $http->request('DELETE', "$url/_requests");
}

sub qdrant {
    my ($method, $path, $body) = @_;
    my $res = $http->request($method, "$url$path",
        defined $body ? { headers => { 'content-type' => 'application/json' },
                          content => encode_json($body) } : {});
    die "$method $path: $res->{status} $res->{content}" unless $res->{success};
    return decode_json($res->{content});
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0)
        or die $!;
    my $p = $s->sockport;
    close $s;
    return $p;
}
