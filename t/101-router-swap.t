# The intent model swapped under a running nginx: kb-build intents
# publishes a new model (new rules) and every worker routes with it within
# a second, without a restart and without a failed request. Plain
# Test::More: the block format cannot rebuild a file between requests.

use strict;
use warnings;

use Test::More;
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use SupportAgent::Test ();

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $so = SupportAgent::Test::module_so();
my $repo = SupportAgent::Test::repo_root();
my $kb_build = $ENV{SA_KB_BUILD} || "$repo/build/kb-build";
my $dir = tempdir('sa-rswap-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $port = SupportAgent::Test::free_port();
my $started;

mkdir "$dir/logs";
copy("$repo/t/fixtures/routes.conf", "$dir/routes.conf") or die $!;
build();

open my $fh, '>', "$dir/nginx.conf" or die $!;
print $fh <<"_EOC_";
load_module $so;
worker_processes 2;
master_process on;
daemon on;
error_log $dir/logs/error.log info;
pid $dir/logs/nginx.pid;
@{[ $> == 0 ? "user root;" : "" ]}
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    support_agent_store $dir/store;
    server {
        listen 127.0.0.1:$port reuseport;
        location = /classify {
            support_agent_classify;
            support_agent_intents $dir/router.model;
        }
    }
}
_EOC_
close $fh;

system($nginx, '-p', "$dir/", '-c', "$dir/nginx.conf", '-e',
       "$dir/logs/error.log") == 0 or BAIL_OUT("nginx did not start");
$started = 1;
SupportAgent::Test::wait_port($port)
    or BAIL_OUT("nginx does not listen on $port");

my ($fails, $n) = (0, 0);

for (1 .. 20) {
    $n++;
    $fails++ unless classify('where is my parcel') =~ /^\{"intent":"track_order"/;
}

is($fails, 0, "before: $n requests routed by the model");

# a new rule, published while requests keep coming
open $fh, '>>', "$dir/routes.conf" or die $!;
print $fh "rule 500 parcel_question parcel\nroute parcel_question escalate\n";
close $fh;
build();

my $deadline = time + 1.5;
my $last = '';

while (time < $deadline) {
    $n++;
    $last = classify('where is my parcel');
    $fails++ unless $last =~ /^\{"intent":"(track_order|parcel_question)"/;
    sleep 0.02;
}

is($fails, 0, "during the swap: $n requests, none failed");

my $new = 0;
for (1 .. 10) {
    $new++ if classify('where is my parcel')
              =~ /^\{"intent":"parcel_question","route":"escalate","confidence":1,"signals":\{"rule":"parcel"\}/;
}

is($new, 10, 'after: every worker routes with the new rule');

stop();

open my $log, '<', "$dir/logs/error.log" or die $!;
my @log = <$log>;
close $log;

ok(scalar(grep { /intent model ".*router\.model" reloaded/ } @log) >= 1,
   'the swap was logged');
is(join('', grep { /\[(alert|crit|error|emerg)\]/ } @log), '', 'no errors');

done_testing();


sub build {
    system($kb_build, 'intents', '--examples', "$repo/t/fixtures/intents.jsonl",
           '--rules', "$dir/routes.conf", '--out', "$dir/router.model",
           '--quiet') == 0
        or die "kb-build intents failed\n";
}

# one request on a new connection (either worker), the body
sub classify {
    my ($text) = @_;
    (my $q = $text) =~ s/ /+/g;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or return '';
    print $s "GET /classify?q=$q HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $r = <$s>;
    close $s;
    return '' unless defined $r && $r =~ m{^HTTP/1\.1 200 .*?\r\n\r\n(.*)$}s;
    return $1;
}

sub stop {
    return unless $started;
    $started = 0;
    open my $p, '<', "$dir/logs/nginx.pid" or return;
    my $pid = <$p>;
    close $p;
    chomp $pid;
    kill 'QUIT', $pid;
    my $t = time;
    while (kill(0, $pid) && time - $t < 5) {
        sleep 0.05;
    }
}


END { stop() }
