# Hot swap of the knowledge base under load: kb-build run again (and
# again) on the path nginx serves replaces the file atomically, and the
# workers pick the new file up without a restart and without one failed
# request.  Several client processes search (and take chat turns) for a
# question answered by billing/gift-cards, on keep-alive and on fresh
# connections, while this process rebuilds the KB with that article
# changed each time: incremental edits, a --rebuild from scratch, the
# article deleted and added again.  The article's title and the answer's
# text carry the build's marker ("Gift cards v3", "revision v3."), so each
# response says which KB answered it.  A worker stat()s the path at most
# once a second, so under load each worker swaps at each second boundary
# to whichever build is then current: a run sees v0, one or two of the
# builds in between (which ones depends on the phase of the clock) and the
# last one; every build is published under load all the same.
#
# Like t/070-lifecycle.t it needs a real master process and two workers,
# which the block format cannot express, so it drives nginx itself (plain
# Test::More; it runs the same under both Test::Nginx runners).

use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use SupportAgent::Test ();

$| = 1;

my $repo = SupportAgent::Test::repo_root();
my $kb_build = $ENV{SA_KB_BUILD} || "$repo/build/kb-build";
plan skip_all => "build/kb-build is not built (make build)" unless -x $kb_build;

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $so = SupportAgent::Test::module_so();
my $dir = tempdir('sa-swap-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $port = SupportAgent::Test::free_port();
my $kb = "$dir/kb.mdb";
my $article = "$dir/hc/billing/gift-cards.md";
my $parent = $$;

my $QUERY = 'how long is a gift card valid';
my $CLIENTS = 4;            # load processes, see client()
my $PAUSE = 0.002;          # between a client's requests: load, not a CPU hog
my $FIRST_BUILD = 0.3;      # s after the load starts
my $BUILD_EVERY = 0.35;     # s between builds
my $SETTLE = 1.2;           # workers stat() the path at most once a second

my (@clients, $master);

# the builds made while the load runs; a build's index is its marker
# ("v<index>"), the initial build is v0
my @builds = (
    { name => 'incremental: title and a sentence', edit => 'article' },
    { name => 'incremental: a section added', edit => 'article', extra => 1 },
    { name => 'full build (--rebuild)', edit => 'article', args => ['--rebuild'],
      report => qr/\(full build/ },
    { name => 'incremental: the article deleted', edit => 'delete',
      report => qr/removed 1\)/ },
    { name => 'incremental: the article added again', edit => 'article',
      report => qr/\(new 1,/ },
    { name => 'incremental: title and a sentence', edit => 'article' },
);
my $FINAL = scalar @builds;
my $DELETED = (grep { $builds[$_ - 1]{edit} eq 'delete' } 1 .. $FINAL)[0];

mkdir "$dir/logs";
system('cp', '-r', "$repo/kb-build/sample-helpcenter", "$dir/hc") == 0
    or BAIL_OUT('cannot copy the sample help center');

my $original = slurp($article);
$original =~ /^title: "Gift cards"$/m && $original =~ /US gift cards do not expire\./
    or BAIL_OUT("$article is not the article this test edits");

write_article(0);
my $report = build(0);
like($report, qr/^kb-build: wrote \Q$kb\E \(full build/m, 'v0: the initial full build');

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
        # reuseport: the kernel spreads connections over both workers
        listen 127.0.0.1:$port reuseport;
        add_header X-Worker \$pid always;
        location = /kb/search {
            support_agent_search;
            support_agent_kb $kb;
        }
        location = /chat {
            support_agent;
            support_agent_kb $kb;
        }
    }
}
_EOC_
close $fh;

system($nginx, '-p', "$dir/", '-c', "$dir/nginx.conf", '-e',
       "$dir/logs/error.log") == 0 or BAIL_OUT("nginx did not start");
$master = read_pid();
SupportAgent::Test::wait_port($port)
    or BAIL_OUT("nginx does not listen on $port");

my @workers;
{
    my $t = time;
    while ((@workers = worker_pids($master)) < 2 && time - $t < 5) {
        sleep 0.02;
    }
    @workers = sort { $a <=> $b } @workers;
}
is(scalar(@workers), 2, 'two workers') or BAIL_OUT('nginx did not start its workers');

# ---------------------------------------------------------------------
# the load, and the builds under it

pipe(my $stop_r, my $stop_w) or die "pipe: $!";
my @modes = (
    { keepalive => 1 },
    { keepalive => 1, chat => 1 },
    { keepalive => 0 },
    { keepalive => 0, chat => 1 },
);
my $t0 = time;
for my $i (0 .. $CLIENTS - 1) {
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $stop_w;
        my $rc = eval { client($i, $modes[$i % @modes], $stop_r); 0 } // do {
            warn "client $i: $@";
            1;
        };
        POSIX::_exit($rc);
    }
    push @clients, $pid;
}
close $stop_r;

my ($last_build, @build_ok);
for my $v (1 .. $FINAL) {
    sleep_until($t0 + $FIRST_BUILD + ($v - 1) * $BUILD_EVERY);
    my $b = $builds[$v - 1];
    if ($b->{edit} eq 'delete') {
        unlink $article or die "unlink $article: $!";
    } else {
        write_article($v, $b->{extra});
    }
    my $out = build($v, @{ $b->{args} || [] });
    $last_build = time;
    my $want = $b->{report} || qr/\(incremental\)/;
    push @build_ok, [$v, $b->{name}, $out =~ /^kb-build: wrote .*$want/s ? 1 : 0, $out];
}
my $built = $last_build - $t0;

# the load goes on until every worker must have seen the last build
sleep_until($last_build + $SETTLE);
close $stop_w;
my $load_time = time - $t0;

for my $b (@build_ok) {
    ok($b->[2], "v$b->[0]: $b->[1]") or diag($b->[3]);
}

my (%total, @samples, %versions, %chunks, %by_worker);
for my $i (0 .. $#clients) {
    my $pid = $clients[$i];
    my $t = time;
    while (waitpid($pid, POSIX::WNOHANG()) == 0 && time - $t < 10) {
        sleep 0.02;
    }
    if (kill 0, $pid) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    $clients[$i] = 0;
    is($? >> 8, 0, "client $i finished");
    my $r = eval { decode_json(slurp("$dir/client-$i.json")) } || {};
    $total{$_} += $r->{$_} // 0
        for qw(requests keepalive fresh chat connections failures regressions);
    push @samples, @{ $r->{samples} || [] };
    $versions{$_} += $r->{versions}{$_} for keys %{ $r->{versions} || {} };
    $chunks{$_} = 1 for keys %{ $r->{chunks} || {} };
    $by_worker{$_} += $r->{workers}{$_} for keys %{ $r->{workers} || {} };
    note("client $i: " . join(', ', map { "$_ => $r->{by}{$_}" } sort keys %{ $r->{by} || {} }));
}

note(sprintf "load: %.2f s, builds done %.2f s in; %d requests (%d keep-alive, "
     . "%d on fresh connections, %d chat turns) over %d connections; "
     . "per worker: %s; per KB version: %s",
     $load_time, $built, map({ $total{$_} // 0 } qw(requests keepalive fresh chat connections)),
     join(', ', map { "$_ => $by_worker{$_}" } sort keys %by_worker),
     join(', ', map { "v$_ => $versions{$_}" } sort { $a <=> $b } keys %versions));

is($total{failures} // 0, 0, 'load: no failed or malformed response')
    or diag(join "\n", @samples);
cmp_ok($total{requests} // 0, '>', 200,
       "load: $total{requests} requests ($total{keepalive} keep-alive, $total{fresh} "
       . "on fresh connections, $total{chat} chat turns)");
is($total{regressions} // 0, 0, 'load: no worker ever answered from an older KB than before');
ok($by_worker{$workers[0]} && $by_worker{$workers[1]}
   && keys(%by_worker) == 2, 'load: both workers served it')
    or diag(explain(\%by_worker));
cmp_ok(scalar(keys %versions), '>=', 3,
       'load: answers came from ' . scalar(keys %versions) . ' versions of the KB');
ok($versions{$FINAL}, "load: the last version (v$FINAL) was served under load");
cmp_ok(scalar(keys %chunks), '>', 1,
       'load: the answer\'s chunk id changed between versions ('
       . join(', ', sort { $a <=> $b } keys %chunks) . ')');

# ---------------------------------------------------------------------
# every worker serves the last version, over fresh connections

{
    my (%seen, @bad, $n);
    while ($n++ < 400) {
        my $chat = $n % 2;
        my ($res, $err) = request(undef, $chat, 0);
        my ($ver, $why) = $res ? check($res, $chat) : (undef, $err);
        push @bad, "request $n: $why" if defined $why;
        push @bad, "request $n: v$ver, not v$FINAL" if defined $ver && $ver != $FINAL;
        last if @bad;
        $seen{ $res->{headers}{'x-worker'} }[$chat]++;
        last if keys(%seen) == 2
             && !grep { ($_->[0] // 0) < 3 || ($_->[1] // 0) < 3 } values %seen;
    }
    is_deeply(\@bad, [], "after the last build: the answers are v$FINAL");
    is_deeply([sort { $a <=> $b } keys %seen], \@workers,
              "after the last build: both workers answered (searches and chat turns, "
              . "$n requests)");
}

is_deeply([sort { $a <=> $b } worker_pids($master)], \@workers,
          'the workers were never restarted');

# a graceful quit
kill 'QUIT', $master;
ok(wait_gone($master, 10), 'nginx quit');
undef $master;

my $log = slurp("$dir/logs/error.log");
unlike($log, qr/open socket #\d+ left/, 'no open sockets left at exit');
my @bad = $log =~ /^(.*\[(?:warn|error|crit|alert|emerg)\].*)$/mg;
is_deeply(\@bad, [], 'no warnings or errors in the error log');
for my $w (@workers) {
    my $n = () = $log =~ /\[notice\] $w#\d+: .*support agent: knowledge base "\Q$kb\E" reloaded/g;
    ok($n >= 1, "worker $w reloaded the knowledge base ($n times)");
}

done_testing();


# ---------------------------------------------------------------------
# the article at build v: the marker in its title and in the answer

sub write_article {
    my ($v, $extra) = @_;
    my $text = $original;
    $text =~ s/^title: "Gift cards"$/title: "Gift cards v$v"/m;
    $text =~ s/US gift cards do not expire\./US gift cards do not expire. Checked in revision v$v./;
    if ($extra) {
        $text .= "\n## Revision notes\n\n"
            . join("\n\n", map { "Note $_ of revision v$v: gift card balances, PINs, "
                                 . "expiry dates and refunds onto gift cards were reviewed "
                                 . "by the billing team." } 1 .. 12)
            . "\n";
    }
    my $tmp = "$article.tmp";
    open my $out, '>', $tmp or die "$tmp: $!";
    print $out $text;
    close $out or die "$tmp: $!";
    rename $tmp, $article or die "rename $tmp: $!";
}

sub build {
    my ($v, @args) = @_;
    my $log = "$dir/build-$v.log";
    my $rc = system(qq{"$kb_build" index --out "$kb" --markdown "$dir/hc" --quiet }
                    . join(' ', @args) . qq{ >"$log" 2>&1});
    my $out = slurp($log);
    BAIL_OUT("kb-build v$v failed ($rc): $out") if $rc != 0;
    return $out;
}

# ---------------------------------------------------------------------
# a load client (a child process): requests until the parent closes the
# pipe, results to client-N.json

sub client {
    my ($id, $mode, $stop) = @_;
    my $sel = IO::Select->new($stop);
    my $deadline = time + 30;
    my %st = (requests => 0, keepalive => 0, fresh => 0, chat => 0, connections => 0,
              failures => 0, regressions => 0, samples => [], versions => {},
              chunks => {}, workers => {});
    my ($sock, $used, %last);
    my $n = 0;

    until ($sel->can_read(0) || time > $deadline) {
        my $chat = $mode->{chat} && $n % 2;
        my $start = time - $t0;
        unless ($sock) {
            $st{connections}++;
            $used = 0;
        }
        my ($res, $err) = request(\$sock, $chat, $mode->{keepalive});
        $n++;
        $st{requests}++;
        $st{ $mode->{keepalive} ? 'keepalive' : 'fresh' }++;
        $st{chat}++ if $chat;

        my ($ver, $why) = $res ? check($res, $chat) : (undef, $err);
        if (defined $why) {
            $st{failures}++;
            push @{ $st{samples} }, sprintf("client %d, request %d (%s, %s, at %.3f s): %s",
                $id, $n, $chat ? 'chat' : 'search',
                $mode->{keepalive} ? 'keep-alive, request ' . ($used + 1) . ' on its connection'
                                  : 'fresh connection',
                $start, $why)
                if @{ $st{samples} } < 5;
        } else {
            my $w = $res->{headers}{'x-worker'};
            $st{workers}{$w}++;
            $st{by}{ ($mode->{keepalive} ? 'keepalive' : 'fresh') . "-$w" }++;
            $st{versions}{$ver}++;
            $st{chunks}{ $res->{chunk} } = 1 if defined $res->{chunk};
            if (defined $last{$w} && $ver < $last{$w}) {
                $st{regressions}++;
                push @{ $st{samples} }, sprintf("client %d, request %d at %.3f s: worker %s "
                    . "answered from v%d after v%d", $id, $n, $start, $w, $ver, $last{$w})
                    if @{ $st{samples} } < 5;
            }
            $last{$w} = $ver;
        }
        $used++;
        if ($sock && (!$res || $res->{close} || $used >= 25)) {
            close $sock;
            undef $sock;
        }
        sleep $PAUSE if $PAUSE;
    }
    close $sock if $sock;

    open my $out, '>', "$dir/client-$id.json" or die $!;
    print $out encode_json(\%st);
    close $out or die $!;
}

# one request on $$sockref (connected when undef; keep-alive or not), or on
# a connection of its own when $sockref is undef; returns (response) or
# (undef, error)
sub request {
    my ($sockref, $chat, $keepalive) = @_;
    my $sock = $sockref ? $$sockref : undef;
    unless ($sock) {
        $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5)
            or return (undef, "connect: $@");
        $$sockref = $sock if $sockref;
    }
    my $conn = $keepalive ? 'keep-alive' : 'close';
    my $req;
    if ($chat) {
        my $body = qq({"message": "$QUERY?"});
        $req = "POST /chat HTTP/1.1\r\nHost: localhost\r\nConnection: $conn\r\n"
             . "Content-Type: application/json\r\nContent-Length: " . length($body)
             . "\r\n\r\n$body";
    } else {
        (my $q = $QUERY) =~ s/ /+/g;
        $req = "GET /kb/search?q=$q&k=5 HTTP/1.1\r\nHost: localhost\r\n"
             . "Connection: $conn\r\n\r\n";
    }
    my $res;
    my $err = do {
        local $SIG{PIPE} = 'IGNORE';
        my $w = syswrite($sock, $req);
        !defined $w || $w != length $req ? 'write: ' . ($! || 'short write') : undef;
    };
    ($res, $err) = read_response($sock, !$keepalive) unless $err;
    close $sock unless $sockref;
    return ($res, $err);
}

sub read_response {
    my ($sock, $to_eof) = @_;
    my $sel = IO::Select->new($sock);
    my $deadline = time + 5;
    my $buf = '';
    my $more = sub {
        my $left = $deadline - time;
        return 'timeout' if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($sock, $buf, 65536, length $buf);
        return defined $n ? ($n ? undef : 'eof') : "read: $!";
    };

    while ((my $i = index($buf, "\r\n\r\n")) < 0) {
        my $e = $more->();
        return (undef, "$e before the end of the header, after "
                       . length($buf) . ' bytes: ' . substr($buf, 0, 200)) if $e;
    }
    my $i = index($buf, "\r\n\r\n");
    my ($status_line, @lines) = split /\r\n/, substr($buf, 0, $i);
    substr($buf, 0, $i + 4, '');
    my ($status) = $status_line =~ m{^HTTP/1\.1 (\d{3}) }
        or return (undef, "bad status line: $status_line");
    my %h;
    for (@lines) {
        my ($k, $v) = /^([!#-'*+.0-9A-Z^-z|~-]+):[ \t]*(.*?)[ \t]*$/
            or return (undef, "bad header line: $_");
        $h{ lc $k } = $v;
    }

    my $body;
    if (defined $h{'content-length'}) {
        my $len = $h{'content-length'};
        while (length($buf) < $len) {
            my $e = $more->();
            return (undef, "$e after " . length($buf) . " of $len body bytes") if $e;
        }
        return (undef, 'bytes after the body: ' . substr($buf, $len, 100))
            if length($buf) > $len;
        $body = $buf;
    } elsif (($h{'transfer-encoding'} // '') =~ /^chunked$/i) {
        $body = '';
        while (1) {
            while ($buf !~ /\r\n/) {
                my $e = $more->();
                return (undef, "$e in a chunk header") if $e;
            }
            $buf =~ s/^([0-9a-fA-F]+)\r\n// or return (undef, 'bad chunk header: '
                                                     . substr($buf, 0, 40));
            my $len = hex $1;
            while (length($buf) < $len + 2) {
                my $e = $more->();
                return (undef, "$e in a chunk") if $e;
            }
            $body .= substr($buf, 0, $len, '');
            $buf =~ s/^\r\n// or return (undef, 'no CRLF after a chunk');
            last if $len == 0;
        }
        return (undef, 'bytes after the body') if length $buf;
    } else {
        return (undef, "no Content-Length or chunked body (status $status)");
    }

    my $close = ($h{connection} // '') =~ /close/i;
    if ($to_eof) {
        # Connection: close: nginx closes first, nothing more comes
        my $e = $more->();
        return (undef, "not closed after the response: " . ($e // substr($buf, 0, 100)))
            if !defined $e || $e ne 'eof';
        $close = 1;
    }
    return { status => $status, headers => \%h, body => $body, close => $close };
}

# a response's KB version, or (undef, what is wrong with it)
sub check {
    my ($res, $chat) = @_;
    (my $what = "status $res->{status}, body: " . substr($res->{body}, 0, 300)) =~ s/\s*\n\s*/ /g;
    return (undef, $what) unless $res->{status} == 200;
    return (undef, "Content-Type $res->{headers}{'content-type'}: $what")
        unless ($res->{headers}{'content-type'} // '') eq 'application/json';
    return (undef, "no X-Worker: $what") unless ($res->{headers}{'x-worker'} // '') =~ /^\d+$/;
    my $j = eval { JSON::PP->new->utf8->decode($res->{body}) };
    return (undef, "invalid JSON ($@): $what") unless ref $j eq 'HASH';

    my @gift;
    if ($chat) {
        return (undef, "not a KB answer: $what")
            unless ($j->{conversation_id} // '') =~ /^c_[0-9a-f]{32}$/
                && defined $j->{reply} && !ref $j->{reply} && length $j->{reply}
                && ref $j->{citations} eq 'ARRAY'
                && ($j->{finish_reason} // '') eq 'stop' && ($j->{source} // '') eq 'kb';
        for my $c (@{ $j->{citations} }) {
            return (undef, "bad citation: $what")
                unless ref $c eq 'HASH' && defined $c->{document} && defined $c->{title};
            push @gift, $c if $c->{document} eq 'billing/gift-cards';
        }
    } else {
        return (undef, "not the query's answer: $what")
            unless ($j->{query} // '') eq $QUERY && ref $j->{retrieval} eq 'HASH'
                && ref $j->{hits} eq 'ARRAY';
        return (undef, "no hits: $what") unless @{ $j->{hits} };
        for my $h (@{ $j->{hits} }) {
            return (undef, "bad hit: $what")
                unless ref $h eq 'HASH' && defined $h->{chunk} && $h->{chunk} =~ /^\d+$/
                    && length($h->{document} // '') && length($h->{title} // '')
                    && defined $h->{text} && defined $h->{url};
            push @gift, $h if $h->{document} eq 'billing/gift-cards';
        }
    }

    # the KB that answered: the marker of the gift card article, or the
    # build without it
    return ($DELETED) unless @gift;
    my %ver;
    for my $g (@gift) {
        my ($v) = $g->{title} =~ /^Gift cards v(\d+)$/
            or return (undef, "title \"$g->{title}\": $what");
        $ver{$v} = 1;
        if (!$chat && ($g->{section} // '') eq 'How long is a gift card valid?') {
            my ($tv) = $g->{text} =~ /Checked in revision v(\d+)\./
                or return (undef, "no marker in the answer: $what");
            $ver{$tv} = 1;
            $res->{chunk} = $g->{chunk};
        }
    }
    return (undef, "two versions in one answer: $what") if keys %ver != 1;
    my ($v) = keys %ver;
    return (undef, "v$v was never built: $what") if $v > $FINAL || $v == $DELETED;
    return ($v);
}

# ---------------------------------------------------------------------

sub slurp {
    my ($file) = @_;
    open my $in, '<', $file or return '';
    local $/;
    return scalar <$in>;
}

sub sleep_until {
    my ($t) = @_;
    my $d = $t - time;
    sleep $d if $d > 0;
}

sub read_pid {
    my $t = time;
    while (time - $t < 5) {
        my $pid = slurp("$dir/logs/nginx.pid");
        return $1 if $pid =~ /(\d+)/;
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

# the daemonized master is our child under Subreaper (a zombie until
# reaped), else init's
sub wait_gone {
    my ($pid, $secs) = @_;
    my $t = time;
    while (time - $t < $secs) {
        waitpid($pid, POSIX::WNOHANG());
        return 1 unless kill 0, $pid;
        sleep 0.02;
    }
    return 0;
}


# a failed test or a die: no client and no nginx of ours is left running
END {
    cleanup() if defined $parent && $$ == $parent;
}

sub cleanup {
    my $status = $?;
    for my $pid (grep { $_ } @clients) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    if ($master && kill 0, $master) {
        kill 'QUIT', $master;
        unless (wait_gone($master, 3)) {
            my @w = worker_pids($master);
            kill 'TERM', $master;
            unless (wait_gone($master, 2)) {
                kill 'KILL', $master, @w;
                wait_gone($master, 1);
            }
        }
    }
    $? = $status;
}
