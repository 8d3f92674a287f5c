# A worker killed (SIGKILL) in the middle of a handoff: its POST to the
# helpdesk got there but was never answered.  The ticket is in LMDB with a
# lease naming the dead worker; the other worker takes it over within a
# second and sends it again with the same Idempotency-Key, which the
# helpdesk deduplicates: exactly one ticket.  The customer's next request
# for a human gets that ticket back.  Plain Test::More: the block format
# cannot kill a worker mid-request.

use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use SupportAgent::Test ();

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $so = SupportAgent::Test::module_so();
my $repo = SupportAgent::Test::repo_root();
my $kb_build = $ENV{SA_KB_BUILD} || "$repo/build/kb-build";
my $dir = tempdir('sa-hcrash-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $port = SupportAgent::Test::free_port();
my $hd = SupportAgent::Test::start_helpdesk_server();
my $started;

mkdir "$dir/logs";

system($kb_build, 'intents', '--examples', "$repo/t/fixtures/intents.jsonl",
       '--rules', "$repo/t/fixtures/routes.conf", '--out',
       "$dir/router.model", '--quiet') == 0
    or die "kb-build intents failed\n";

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
        location = /chat {
            support_agent;
            support_agent_intents $dir/router.model;
            support_agent_handoff_url http://127.0.0.1:$hd/delay=20000:1/tickets;
            support_agent_handoff_timeout 30s;
        }
    }
}
_EOC_
close $fh;

http($hd, 'POST', '/_reset', '');

system($nginx, '-p', "$dir/", '-c', "$dir/nginx.conf", '-e',
       "$dir/logs/error.log") == 0 or BAIL_OUT("nginx did not start");
$started = 1;
SupportAgent::Test::wait_port($port)
    or BAIL_OUT("nginx does not listen on $port");

# the customer asks for a human; the helpdesk holds the POST for 20 s
my $client = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
    or die "connect: $!";
my $body = '{"message": "let me speak to a human"}';
print $client "POST /chat HTTP/1.1\r\nHost: localhost\r\n"
    . "Content-Type: application/json\r\nContent-Length: "
    . length($body) . "\r\nConnection: close\r\n\r\n$body";

my $records = wait_for(sub {
    my $r = http($hd, 'GET', '/_requests', '');
    return $r =~ m{"path": ?"/delay=20000:1/tickets"} ? $r : undef;
}, 5);

ok($records, 'the ticket reached the helpdesk, which holds the answer');

my $victim;
wait_for(sub {
    open my $log, '<', "$dir/logs/error.log" or return undef;
    while (<$log>) {
        $victim = $1 if /\[notice\] (\d+)#\d+: \*\d+ support agent: conversation "c_[0-9a-f]{32}" handed off: explicit/;
    }
    close $log;
    return $victim;
}, 5);

ok($victim, "the worker sending it is $victim");
ok(kill('KILL', $victim), 'killed it') if $victim;

# the client's connection dies with the worker
my $reply = do { local $/; <$client> } // '';
close $client;
unlike($reply, qr/"status":"created"/, 'the customer did not get an answer from the dead worker');

my $tickets = wait_for(sub {
    my $r = http($hd, 'GET', '/tickets', '');
    return $r =~ /"deliveries": ?1/ ? $r : undef;
}, 10);

ok($tickets, 'the other worker delivered the ticket');
like($tickets // '', qr/^\{"tickets": ?\[\{"id": ?"HD-1001", ?"idempotency_key": ?"handoff-(c_[0-9a-f]{32})", ?"deliveries": ?1, ?"posts": ?2,/,
     'one ticket, posted twice with the same key, delivered once');
unlike($tickets // '', qr/HD-1002/, 'no second ticket');

my ($id) = ($tickets // '') =~ /"conversation_id": ?"(c_[0-9a-f]{32})"/;

# the customer is back: a reminder with the ticket, no new one
my $again = http($port, 'POST', '/chat',
                 qq({"conversation_id": "$id", "message": "I want to talk to a human"}));
like($again, qr/"reply":"Your conversation is already with our support team \(ticket HD-1001\)\./,
     'the next request for a human is told the ticket');
like($again, qr/"handoff":\{"status":"existing","ticket_id":"HD-1001"/, 'status existing');

stop();

open my $log, '<', "$dir/logs/error.log" or die $!;
my @log = <$log>;
close $log;

ok(scalar(grep { /sending the queued ticket of conversation "\Q$id\E" \(attempt 2\)/ } @log),
   'the queue sent it again (attempt 2)');
ok(scalar(grep { /worker process $victim exited on signal 9/ } @log),
   'the master saw the worker die');
is(join('', grep { /\[(alert|crit|error|emerg)\]/ && !/exited on signal 9/ } @log), '',
   'no other errors');

done_testing();


# one request on a new connection; the body of a 2xx-4xx reply
sub http {
    my ($p, $method, $path, $content) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p") or return '';
    print $s "$method $path HTTP/1.0\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\nContent-Length: "
        . length($content) . "\r\n\r\n$content";
    local $/;
    my $r = <$s> // '';
    close $s;
    return $r =~ m{^HTTP/1\.[01] \d+ .*?\r\n\r\n(.*)$}s ? $1 : '';
}

sub wait_for {
    my ($check, $seconds) = @_;
    my $t = time;
    while (time - $t < $seconds) {
        my $v = $check->();
        return $v if $v;
        sleep 0.1;
    }
    return undef;
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
