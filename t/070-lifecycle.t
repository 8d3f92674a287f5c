# Live streams across a graceful reload and a graceful quit, and a worker
# killed in the middle of a turn. These need a real master process and
# signals sent while a stream is running, which the block format cannot
# express, so this file drives nginx itself (plain Test::More; it runs the
# same under both Test::Nginx runners because it uses neither).

use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);
use SupportAgent::Test ();

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $so = SupportAgent::Test::module_so();
my $llm = SupportAgent::Test::start_llm_server();
my $dir = tempdir('sa-life-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $port = SupportAgent::Test::free_port();

mkdir "$dir/logs";

open my $fh, '>', "$dir/nginx.conf" or die $!;
print $fh <<"_EOC_";
load_module $so;
worker_processes 2;
master_process on;
daemon on;
error_log $dir/logs/error.log info;
pid $dir/logs/nginx.pid;
@{[ $> == 0 ? "user root;" : "" ]}
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    support_agent_store $dir/store;
    server {
        listen 127.0.0.1:$port;
        location = /chat {
            support_agent;
            support_agent_llm_url http://127.0.0.1:$llm/token_ms=150/v1;
            support_agent_llm_model test-model;
            support_agent_conversation_key \$http_x_session;
            support_agent_heartbeat 100ms;
        }
    }
}
_EOC_
close $fh;

system($nginx, '-p', "$dir/", '-c', "$dir/nginx.conf", '-e',
       "$dir/logs/error.log") == 0 or BAIL_OUT("nginx did not start");
SupportAgent::Test::wait_port($port)
    or BAIL_OUT("nginx does not listen on $port");

my $master = read_pid();

# a stream that is running while nginx reloads
{
    my $stream = start_turn('reload-1', 'keep streaming through the reload');
    sleep 0.4;
    kill 'HUP', $master;
    my $out = finish_turn($stream);
    like($out, qr/\r\n\r\n.*event: meta\n/s, 'reload: stream began');
    like($out, qr/event: done\ndata: \{"conversation_id":"k_[0-9a-f]{32}","finish_reason":"stop","source":"llm"\}\n\n/,
         'reload: the stream ended with done');
    like($out, qr/0\r\n\r\n$/, 'reload: the chunked body was terminated');
}

sleep 0.5;

# the conversation is saved and usable on the new workers
{
    my $out = finish_turn(start_turn('reload-1', 'after', 'json'));
    like($out, qr/"reply":"You said: after\. \(messages: 4\)"/,
         'reload: the streamed turn was saved');
}

# a worker killed in the middle of a turn: the turn is lost, the
# conversation is not stuck
{
    my $stream = start_turn('crash-1', 'doomed');
    sleep 0.4;
    my @workers = worker_pids($master);
    kill 'KILL', @workers;
    finish_turn($stream);
    sleep 0.5;
    my $out = finish_turn(start_turn('crash-1', 'again', 'json'));
    like($out, qr/^HTTP\/1\.1 200 /, 'crash: the next turn is served');
    like($out, qr/"reply":"You said: again\. \(messages: 2\)"/,
         'crash: the killed turn was not half saved');
}

# a graceful quit with a stream running
{
    my $stream = start_turn('quit-1', 'keep streaming through the quit');
    sleep 0.4;
    kill 'QUIT', $master;
    my $out = finish_turn($stream);
    like($out, qr/event: done\n/, 'quit: the stream ended with done');
    my $t = time;
    while (kill(0, $master) && time - $t < 10) {
        1 while waitpid(-1, POSIX::WNOHANG()) > 0;
        sleep 0.05;
    }
    ok(!kill(0, $master), 'quit: nginx exited');
}

my $log = do { local (@ARGV, $/) = "$dir/logs/error.log"; <> };
unlike($log, qr/open socket #\d+ left/, 'no open sockets left at exit');
unlike($log, qr/\[(alert|crit|emerg)\](?! \d+#\d+: worker process \d+ exited on signal 9)/,
       'no alerts in the error log but the killed workers');
like($log, qr/worker process \d+ exited on signal 9/, 'the killed worker was seen');

done_testing();


sub start_turn {
    my ($session, $message, $json) = @_;
    my $body = qq({"message": "$message"});
    my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                     Timeout => 5)
        or die "connect: $!";
    my $accept = $json ? '' : "Accept: text/event-stream\r\n";
    print $sock "POST /chat HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nContent-Type: application/json\r\n"
        . "${accept}X-Session: $session\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n$body";
    return $sock;
}

sub finish_turn {
    my ($sock) = @_;
    my $out = '';
    my $deadline = time + 15;
    while (time < $deadline) {
        my $n = sysread($sock, my $buf, 65536);
        last unless $n;
        $out .= $buf;
    }
    close $sock;
    # de-chunk the body for the event checks, keep the raw tail too
    my ($head, $raw) = split /\r\n\r\n/, $out, 2;
    $raw //= '';
    return $out unless $head =~ /^Transfer-Encoding: chunked/mi;
    my $body = '';
    my $rest = $raw;
    while ($rest =~ s/^([0-9a-f]+)\r\n//i) {
        my $len = hex $1;
        $body .= substr($rest, 0, $len, '');
        $rest =~ s/^\r\n//;
    }
    return "$head\r\n\r\n$body" . ($raw =~ /0\r\n\r\n$/ ? "0\r\n\r\n" : '');
}

sub read_pid {
    my $t = time;
    while (time - $t < 5) {
        if (open my $p, '<', "$dir/logs/nginx.pid") {
            my $pid = <$p>;
            return $1 if defined $pid && $pid =~ /(\d+)/;
        }
        sleep 0.05;
    }
    BAIL_OUT('no nginx.pid');
}

sub worker_pids {
    my ($ppid) = @_;
    my @pids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $s, '<', $stat or next;
        my $line = <$s> // next;
        my ($pid, $parent) = $line =~ /^(\d+) \(.*?\) \S+ (\d+)/ or next;
        push @pids, $pid if $parent == $ppid;
    }
    return @pids;
}

