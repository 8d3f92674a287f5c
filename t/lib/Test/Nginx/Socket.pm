package Test::Nginx::Socket;

# A small, compatible replacement for openresty's Test::Nginx::Socket
# (the real one is on CPAN only, which CI cannot reach).
#
# It implements the subset described in shared/notes/nginx-craft.md §1.6:
# the same data-driven `t/*.t` suites run unchanged under this runner
# (`prove -It/lib`) and under the real one (`prove -I<test-nginx>/lib -It/lib`).
# Block parsing, filters, ONLY/SKIP/LAST, blocks() and the Test::More
# re-exports come from Debian's Test::Base, exactly as in the real module.
# Test names, the generated nginx.conf and the check semantics follow the
# real module; where this runner is stricter it says so in a comment.

use strict;
use warnings;

# "-base" (lower case) makes this package a Test::Base subclass like the
# real module's "-Base", but without Spiffy's source filter.
use Test::Base -base;

use File::Find ();
use File::Glob qw(bsd_glob);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use File::Temp ();
use HTTP::Response ();
use IO::Select ();
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use POSIX qw(:sys_wait_h SIGQUIT SIGKILL SIGHUP SIGUSR1);
use Scalar::Util qw(looks_like_number);
use Socket qw(SOCK_STREAM);
use Test::LongString ();
use Time::HiRes qw(sleep time);

# the version of the real module whose behaviour this one follows
our $VERSION = '0.29';

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test repeat_each
    config_preamble worker_connections master_process_enabled
    no_long_string workers master_on master_off log_level no_shuffle
    no_root_location use_hup server_name server_addr server_root
    html_dir server_port server_port_for_client timeout no_nginx_manager
    check_accum_error_log add_block_preprocessor bail_out
    add_cleanup_handler add_response_body_check
);

# ---------------------------------------------------------------------------
# Settings. Like the real module, the environment is read once at load time;
# suites may read these package variables (e.g. $Test::Nginx::Socket::ServRoot).
# ---------------------------------------------------------------------------

our $Verbose              = $ENV{TEST_NGINX_VERBOSE};
our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $Workers              = 1;
our $WorkerConnections    = 64;
our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $ServerPort           = $ENV{TEST_NGINX_SERVER_PORT}
                            || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient  = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $NoRootLocation       = 0;
our $TestNginxSleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $ForceRestartOnTest   = $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} // 1;
our $RepeatEach           = 1;
our $NoShuffle            = 1;    # blocks always run in file order
our $NoLongString;
our $CheckAccumErrLog     = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES};
our $UseHup               = $ENV{TEST_NGINX_USE_HUP};
our $UseValgrind          = $ENV{TEST_NGINX_USE_VALGRIND};
our $CheckLeak            = $ENV{TEST_NGINX_CHECK_LEAK};
our $EventType            = $ENV{TEST_NGINX_EVENT_TYPE};
our $PostponeOutput       = $ENV{TEST_NGINX_POSTPONE_OUTPUT};
our $WorkerUser           = $ENV{TEST_NGINX_WORKER_USER};
our $Randomize            = $ENV{TEST_NGINX_RANDOMIZE};
our $NoNginxManager       = $ENV{TEST_NGINX_NO_NGINX_MANAGER} || 0;
our $ConfigPreamble       = '';

# Stricter than the real runner (which only prints them): valgrind reports
# (lines like "==123== ...") fail the block that produced them.
# TEST_NGINX_VALGRIND_FAIL=0 restores the print-only behaviour.
our $ValgrindFailOnReport = $ENV{TEST_NGINX_VALGRIND_FAIL} // 1;

our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers, @ResponseBodyChecks);
our ($NginxVersion, $NginxRawVersion, $NginxConfigureArgs);

if (defined $WorkerUser && $WorkerUser !~ /^\w+(?:\s+\w+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

if ($UseValgrind && $UseHup) {
    # valgrind only follows the master process; reloading is still fine
    warn "WARNING: TEST_NGINX_USE_VALGRIND with TEST_NGINX_USE_HUP: "
         . "only the master process runs under valgrind\n";
}

if ($Randomize) {
    $ServerPort = gen_rand_port(1000, {});
    if (!defined $ServerPort) {
        Test::More::BAIL_OUT("Cannot find an available listening port "
                             . "number after 1000 attempts.");
    }
    $ServerPortForClient = $ServerPort;
}

our $ServRoot = $Randomize
    ? File::Spec->rel2abs("t/servroot_$ServerPort")
    : ($ENV{TEST_NGINX_SERVROOT} || File::Spec->rel2abs('t/servroot'));
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = File::Spec->catfile($ServRoot, 'logs');
our $ErrLogFile = File::Spec->catfile($LogDir, 'error.log');
our $AccLogFile = File::Spec->catfile($LogDir, 'access.log');
our $HtmlDir    = File::Spec->catfile($ServRoot, 'html');
our $ConfDir    = File::Spec->catfile($ServRoot, 'conf');
our $ConfFile   = File::Spec->catfile($ConfDir, 'nginx.conf');
our $PidFile    = File::Spec->catfile($LogDir, 'nginx.pid');

# Run-time state.
our $ChildPid;            # nginx as our direct child (valgrind mode)
our $ChildIsValgrind;
our $ErrLogPos = 0;       # error.log offset checked so far
our $PrevBlock;           # block whose nginx is (or was last) running
our $PrevConfig;
our $ConfigVersion;       # HUP mode: served by the extra "Test-Nginx" server
our $FirstTime = 1;
our $InSubprocess;
our $TcpServer;           # the embedded TCP server of the running request
my $BailedOut;
my $ValgrindLog;          # File::Temp holding valgrind's stderr
my $ValgrindLogPos = 0;
my $TotalConnectFailures = 0;
my $CheckLeakNoted;

my @RandStrAlphabet = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '#', '@', '-', '_', '^');

# Sections of the real module this runner does not implement. A suite using
# one would silently test less here than under the real runner: refuse.
my @UnsupportedSections = qw(
    stap stap_out stap_out_like stap_out_unlike http2 http3 curl curl_error
    curl_options curl_protocol udp_listen udp_reply udp_query
    udp_reply_delay skip_nginx skip_nginx2 skip_openssl skip_slave todo
    todo_nginx init request_eval response_body_eval response_body_filters
    error_log_file server_addr_for_client http09 reload_fails charset
    quic_max_idle_timeout
);

# Sections whose $TEST_NGINX_* variables are expanded (config is done apart).
my @ExpandedSections = qw(
    http_config main_config post_main_config user_files request raw_request
    pipelined_requests more_headers tcp_listen tcp_reply tcp_query
    response_body response_body_like response_body_unlike response_headers
    response_headers_like raw_response_headers_like
    raw_response_headers_unlike error_log no_error_log grep_error_log
    grep_error_log_out shutdown_error_log no_shutdown_error_log
);

# ---------------------------------------------------------------------------
# Perl API
# ---------------------------------------------------------------------------

sub repeat_each (@) {
    $RepeatEach = shift if @_;
    return $RepeatEach;
}

sub workers (@) {
    return $Workers unless @_;
    $Workers = shift;
}

sub worker_connections (@) {
    return $WorkerConnections unless @_;
    $WorkerConnections = shift;
}

sub log_level (@) {
    return $LogLevel unless @_;
    $LogLevel = shift;
}

sub master_on ()  { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }

sub master_process_enabled (@) {
    return $MasterProcessEnabled unless @_;
    $MasterProcessEnabled = shift() ? 'on' : 'off';
}

sub no_shuffle ()            { $NoShuffle = 1 }
sub no_long_string ()        { $NoLongString = 1 }
sub no_root_location ()      { $NoRootLocation = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub use_hup ()               { $UseHup = 1 }
sub no_nginx_manager ()      { $NoNginxManager = 1 }
sub config_preamble ($)      { $ConfigPreamble = shift }
sub html_dir ()              { $HtmlDir }
sub server_root ()           { $ServRoot }

sub timeout (@) {
    return $Timeout unless @_;
    $Timeout = shift;
}

sub server_name (@) {
    return $ServerName unless @_;
    $ServerName = shift;
}

sub server_addr (@) {
    return $ServerAddr unless @_;
    $ServerAddr = shift;
}

sub server_port (@) {
    return $ServerPort unless @_;
    $ServerPort = shift;
    # keep the client on the same port unless told otherwise
    $ServerPortForClient = $ServerPort unless $ENV{TEST_NGINX_CLIENT_PORT};
    return $ServerPort;
}

sub server_port_for_client (@) {
    return $ServerPortForClient unless @_;
    $ServerPortForClient = shift;
}

sub env_to_nginx (@) {
    Carp::croak("env_to_nginx: no arguments specified") unless @_;
    for my $v (@_) {
        if ($v !~ /^[A-Za-z_]/ || $v =~ /\n/) {
            Carp::croak("env_to_nginx: bad argument value: $v\n");
        }
        push @EnvToNginx, $v;
    }
}

# Most recently added first, as in the real module.
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($)    { unshift @CleanupHandlers, shift }
sub add_response_body_check ($) { push @ResponseBodyChecks, shift }

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    if ($NoLongString) {
        return Test::More::is($got, $expected, $desc);
    }
    return Test::LongString::is_string($got, $expected, $desc);
}

sub bail_out (@) {
    $BailedOut = 1;
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

sub verbose_warn { warn "# ", @_, "\n" if $Verbose }

sub parse_time ($) {
    my $tm = shift;
    return undef unless defined $tm;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm = $tm / 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

sub trim ($) {
    my $s = shift;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    return $s;
}

# One-line rendering of a log line or pattern for a test name.
sub fmt_str ($) {
    my $str = shift;
    chomp $str;
    $str =~ s/"/\\"/g;
    $str =~ s/\r/\\r/g;
    $str =~ s/\n/\\n/g;
    return $str;
}

sub gen_rand_str {
    my $len = shift;
    return join '', map { $RandStrAlphabet[int rand @RandStrAlphabet] } 1 .. $len;
}

# A free TCP port in 1985..65534, by trying to bind it on $ServerAddr.
sub gen_rand_port {
    my ($tries, $used) = @_;
    for (1 .. $tries) {
        my $port = int(rand 63550) + 1985;
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(
            LocalAddr => $ServerAddr,
            LocalPort => $port,
            Proto     => 'tcp',
        );
        if ($sock) {
            close $sock;
            return $port;
        }
    }
    return undef;
}

sub can_run {
    my $cmd = shift;
    return (-f $cmd && -x _) ? $cmd : undef if $cmd =~ m{/};
    for my $dir (split /:/, $ENV{PATH} // '') {
        next if $dir eq '';
        my $abs = File::Spec->catfile($dir, $cmd);
        return $abs if -f $abs && -x _;
    }
    return undef;
}

sub get_nginx_version () {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of the nginx binary "
                 . "\"$NginxBinary\" (set TEST_NGINX_BINARY): " . ($out // ''));
    }
    $NginxConfigureArgs = $out =~ /^configure arguments:(.*)$/m ? $1 : '';
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s) {
        $NginxRawVersion = "$1.$2.$3";
        return sprintf "%d.%03d%03d", $1, $2, $3;
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

# $TEST_NGINX_* expansion. $TEST_NGINX_RAND_PORT_N gets a fresh free port
# per block; any other variable must exist in %ENV (bail out otherwise).
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return $text unless defined $text;

    my %used = ($ServerPort => 1, map { $_ => 1 } values %$rand_ports);

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $val;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            if (!defined $rand_ports->{$var}) {
                my $port = gen_rand_port(1000, \%used);
                bail_out("$name - Cannot find an available listening port "
                         . "number for $var.\n") unless defined $port;
                $rand_ports->{$var} = $port;
                $used{$port} = 1;
            }
            $val = $rand_ports->{$var};
        } else {
            bail_out("$name - No environment $var defined.\n")
                unless defined $ENV{$var};
            $val = $ENV{$var};
        }
        $val;
    }eg;

    return $text;
}

# Same, through array/hash values (request packets, reply packets...).
sub expand_env {
    my ($v, $name, $rand_ports) = @_;
    my $ref = ref $v;
    return expand_env_in_text($v, $name, $rand_ports) unless $ref;
    if ($ref eq 'ARRAY') {
        return [map { expand_env($_, $name, $rand_ports) } @$v];
    }
    if ($ref eq 'HASH') {
        return { map { $_ => expand_env($v->{$_}, $name, $rand_ports) } keys %$v };
    }
    return $v;    # CODE, Regexp
}

sub sh_quote {
    my $s = shift;
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

# ---------------------------------------------------------------------------
# Process handling
# ---------------------------------------------------------------------------

# Reap every exited child. With Subreaper loaded, the daemonized nginx is
# re-parented to us, so this is what makes it disappear at once.
sub reap_children {
    while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
        undef $ChildPid if defined $ChildPid && $pid == $ChildPid;
    }
}

# True while $pid runs. A zombie counts as gone: it holds no socket any more,
# and without the subreaper it may wait ~1 s for a slow PID 1 to reap it.
sub process_alive ($) {
    my $pid = shift;
    reap_children();
    return 0 unless kill 0, $pid;
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh> // '';
        return 0 if $stat =~ /^\d+ \(.*\) [ZX]/s;
    }
    return 1;
}

sub read_pid_file () {
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in>;
    close $in;
    return undef unless defined $pid && $pid =~ /^\s*(\d+)\s*$/;
    return $1;
}

# The running nginx (master or single process), if any.
sub nginx_pid () {
    return $ChildPid if defined $ChildPid && process_alive($ChildPid);
    my $pid = read_pid_file();
    return $pid if defined $pid && process_alive($pid);
    return undef;
}

# SIGQUIT, then wait for the exit (milliseconds in single-process mode);
# SIGKILL after a grace period. $name: the block that nginx was serving.
sub stop_nginx ($) {
    my $name = shift;
    my $pid = nginx_pid();

    if (defined $pid) {
        verbose_warn("sending QUIT signal to nginx $pid");
        kill SIGQUIT, $pid;

        # valgrind's leak check at exit is slow
        my $grace = $ChildIsValgrind ? 30 : 5;
        my $deadline = time + $grace;
        while (process_alive($pid)) {
            if (time > $deadline) {
                # nginx is a process group leader (setsid/setpgrp): kill
                # its workers too
                my $pgrp = getpgrp($pid);
                kill SIGKILL, (defined $pgrp && $pgrp == $pid ? -$pid : $pid);
                my $until = time + 2;
                sleep 0.01 while process_alive($pid) && time < $until;
                Test::More::fail("$name - nginx (pid $pid) did not exit within "
                                 . "$grace s after SIGQUIT; killed it");
                last;
            }
            sleep 0.002;
        }
    }

    undef $ChildPid;
    undef $ChildIsValgrind;
    # a graceful exit removes it, a killed nginx does not
    unlink $PidFile if -f $PidFile;

    check_valgrind_report($name);
}

# Start nginx in the foreground or daemonizing itself: returns the wait
# status of the command. stderr goes to $stderr (a path) or is inherited.
sub run_nginx_command ($$) {
    my ($cmd, $stderr) = @_;
    verbose_warn("command: @$cmd");
    my $pid = fork;
    bail_out("fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        if (defined $stderr) {
            open STDERR, '>', $stderr;
        }
        { no warnings "exec"; exec { $cmd->[0] } @$cmd; }
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    return $?;
}

sub nginx_command () {
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);
    # -e (nginx >= 1.19.5): early messages go to our error.log, not to the
    # compiled-in path (stderr for Debian's nginx)
    push @cmd, '-e', $ErrLogFile if $NginxVersion >= 1.019005;
    return @cmd;
}

sub valgrind_command () {
    my @opts;
    if ($UseValgrind =~ /^\d+$/) {
        @opts = qw(--num-callers=100 -q --tool=memcheck --leak-check=full
                   --show-possibly-lost=no --gen-suppressions=all);
        push @opts, '--suppressions=valgrind.suppress' if -f 'valgrind.suppress';
    } else {
        @opts = ('-q', split ' ', $UseValgrind);
    }
    return ('valgrind', @opts);
}

sub log_tail () {
    open my $in, '<', $ErrLogFile or return '';
    my @lines = <$in>;
    close $in;
    splice @lines, 0, @lines - 20 if @lines > 20;
    return join '', @lines;
}

# Is something listening on the server port? Read from /proc so that no
# probe connection shows up in error.log (nginx would log its accept and
# "client closed connection"); connect only where /proc is missing.
sub port_listening () {
    my $hex = sprintf '%04X', $ServerPortForClient;
    my $seen_proc;
    for my $file ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $file or next;
        $seen_proc = 1;
        <$in>;    # header
        while (<$in>) {
            # "sl local_address rem_address st ...", st 0A = LISTEN; the
            # kernel lists listening sockets first, so stop at the others
            # (there may be tens of thousands in TIME_WAIT)
            my (undef, $local, undef, $st) = split;
            last if !defined $st || $st ne '0A';
            return 1 if $local =~ /:$hex$/;
        }
    }
    return 0 if $seen_proc;

    my $sock = IO::Socket::INET->new(
        PeerAddr => $ServerAddr,
        PeerPort => $ServerPortForClient,
        Proto    => 'tcp',
        Timeout  => 0.5,
    ) or return 0;
    close $sock;
    return 1;
}

# Start nginx for a block (not under must_die). Bails out when it cannot.
sub start_nginx ($$) {
    my ($name, $valgrind) = @_;

    if ($valgrind) {
        $ValgrindLog ||= File::Temp->new(TEMPLATE => 'test-nginx-valgrind-XXXXXX',
                                          TMPDIR => 1);
        my @cmd = (valgrind_command(), nginx_command());
        warn "$name\n";    # as the real runner: tells which block valgrind ran
        verbose_warn("command: @cmd");
        my $pid = fork;
        bail_out("$name - fork() failed: $!") unless defined $pid;
        if ($pid == 0) {
            setpgrp(0, 0);
            open STDOUT, '>', '/dev/null';
            open STDERR, '>>', $ValgrindLog->filename;
            { no warnings "exec"; exec { $cmd[0] } @cmd; }
            POSIX::_exit(127);
        }
        $ChildPid = $pid;
        $ChildIsValgrind = 1;

        # valgrind starts slowly: wait until nginx listens (connections
        # queue in the backlog until its event loop runs)
        my $deadline = time + 20;
        while (!port_listening()) {
            if (!process_alive($pid)) {
                undef $ChildPid;
                check_valgrind_report($name);
                bail_out("$name - nginx under valgrind exited at startup:\n"
                         . log_tail());
            }
            if (time > $deadline) {
                bail_out("$name - nginx under valgrind does not listen on "
                         . "port $ServerPortForClient after 20 s");
            }
            sleep 0.05;
        }
        return;
    }

    undef $ChildIsValgrind;
    my $stderr = File::Temp->new(TEMPLATE => 'test-nginx-stderr-XXXXXX', TMPDIR => 1);
    my @cmd = nginx_command();
    my $started = time;
    while (1) {
        my $status = run_nginx_command(\@cmd, $stderr->filename);
        my $err = do { local $/; open my $in, '<', $stderr->filename; <$in> } // '';
        print STDERR $err if $err ne '';    # warnings stay visible
        last if $status == 0;

        # Only a port still held (e.g. by another suite run without
        # TEST_NGINX_RANDOMIZE) is worth waiting for; a config error is not.
        my $log = $err . log_tail();
        if ($log =~ /Address already in use/ && time - $started < 10) {
            sleep 0.1;
            next;
        }
        bail_out("$name - Cannot start nginx using command \"@cmd\" "
                 . "(status code $status):\n$log");
    }

    # daemon on: the listening socket exists once the command returned
    sleep $TestNginxSleep;
}

# Valgrind output since the last look; reports fail $name (see above).
sub check_valgrind_report ($) {
    my $name = shift;
    return unless $ValgrindLog;

    open my $in, '<', $ValgrindLog->filename or return;
    seek $in, $ValgrindLogPos, 0;
    my @lines = <$in>;
    $ValgrindLogPos = tell $in;
    close $in;
    return unless @lines;

    # Reports: "==PID==" lines and the "{ ... }" suppressions generated by
    # --gen-suppressions; anything else is nginx's own stderr.
    my (@reports, $in_supp);
    for my $line (@lines) {
        $in_supp = 1 if $line =~ /^\{\s*$/;
        if ($in_supp || $line =~ /^==\d+==/) {
            push @reports, $line;
        } else {
            print STDERR $line;
        }
        $in_supp = 0 if $line =~ /^\}\s*$/;
    }
    return unless grep { /^==\d+==/ } @reports;

    if ($ValgrindFailOnReport) {
        Test::More::fail("$name - valgrind reported errors");
        Test::More::diag(join '', @reports);
    } else {
        print STDERR @reports;
    }
}

# ---------------------------------------------------------------------------
# Server root, user files, nginx.conf
# ---------------------------------------------------------------------------

sub setup_server_root ($$) {
    my ($first_time, $hup) = @_;

    if (-d $ServRoot) {
        # Remove only what we create, so that a mis-set TEST_NGINX_SERVROOT
        # cannot wipe real data.
        remove_tree($ConfDir, bsd_glob("$ServRoot/*_cache"),
                    bsd_glob("$ServRoot/*_temp"));

        if ($hup) {
            # nginx keeps running: keep its pid file (and sockets/certs);
            # error.log is re-created by the USR1 sent next
            File::Find::find({ bydepth => 1, no_chdir => 1, wanted => sub {
                return if -d $_;
                return if !$first_time && /(?:\bnginx\.pid|\.sock|\.crt|\.key)$/;
                unlink $_ or warn "Failed to remove $_: $!\n";
            }}, $ServRoot);
        } else {
            remove_tree($HtmlDir, $LogDir);
            if (!rmdir $ServRoot) {
                my @left = map { s{.*/}{}r } bsd_glob("$ServRoot/*");
                bail_out("Can't remove $ServRoot (not empty?): $! (left: @left; "
                         . "tests may only create files under conf/, html/, "
                         . "logs/, *_temp/ or *_cache/, as with the real runner)");
            }
        }
    }

    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        next if -d $dir;
        mkdir $dir or bail_out("Failed to do mkdir $dir: $!\n");
    }

    my $index = "$HtmlDir/index.html";
    open my $out, '>', $index or bail_out("Can't open $index for writing: $!\n");
    print $out '<html><head><title>It works!</title></head><body>It works!</body></html>';
    close $out;
}

sub write_user_files ($) {
    my $block = shift;
    my $name = $block->name;
    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        # ">>> path [touch date]" lines, each followed by the file's content
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ />>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: ", ref $files,
                 ", only scalar or ARRAY are accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body //= '';
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/} && !-d $1) {
            make_path($1) or bail_out("$name - Cannot create directory $1");
        }
        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;

        if ($date) {
            my $cmd = "TZ=GMT touch -t " . sh_quote($date) . " " . sh_quote($path);
            system($cmd) == 0 or bail_out("Failed to run shell command: $cmd\n");
        }
    }
}

# Temp paths under servroot: Debian's compiled-in /var/lib/nginx/* may not
# exist or be writable. Skipped when http_config sets them, or when the
# module is compiled out (the directive would be unknown).
my @TempPaths = (
    [client_body_temp_path => 'client_body_temp', undef],
    [proxy_temp_path       => 'proxy_temp',   'http_proxy_module'],
    [fastcgi_temp_path     => 'fastcgi_temp', 'http_fastcgi_module'],
    [uwsgi_temp_path       => 'uwsgi_temp',   'http_uwsgi_module'],
    [scgi_temp_path        => 'scgi_temp',    'http_scgi_module'],
);

# The nginx.conf of shared/notes/nginx-craft.md §1.4. $opts: daemon,
# master, hup.
sub write_config_file ($$$) {
    my ($block, $config, $opts) = @_;

    my $http_config      = $block->http_config // '';
    my $main_config      = $block->main_config // '';
    my $post_main_config = $block->post_main_config // '';
    my $server_name      = $block->server_name // $ServerName;
    $config //= '';

    if ($LoadModules) {
        my @modules = map { "load_module $_;" } grep { $_ } split /\s+/, $LoadModules;
        # before main_config: its directives may come from these modules
        $main_config = join("\n", @modules) . "\n$main_config" if @modules;
    }

    (my $quoted_server_name = $server_name) =~ s/\\/\\\\/g;
    $quoted_server_name =~ s/'/\\'/g;

    my $temp_paths = '';
    for my $tp (@TempPaths) {
        my ($directive, $dir, $module) = @$tp;
        next if $http_config =~ /\b$directive\b/;
        next if $module && $NginxConfigureArgs =~ /--without-$module\b/;
        $temp_paths .= "    $directive $ServRoot/$dir;\n";
    }

    my $extra_http_config = '';
    if (defined $PostponeOutput && $http_config !~ /\bpostpone_output\b/) {
        bail_out("Bad TEST_NGINX_POSTPONE_OUTPUT value: $PostponeOutput\n")
            unless $PostponeOutput =~ /^\d+$/;
        $extra_http_config = "    postpone_output $PostponeOutput;\n";
    }

    my $env = join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" } @EnvToNginx;

    my $conf = <<_EOC_;
worker_processes  $Workers;
daemon $opts->{daemon};
master_process $opts->{master};
error_log $ErrLogFile $LogLevel;
pid       $PidFile;
env MOCKEAGAIN_VERBOSE;
env MOCKEAGAIN;
env MOCKEAGAIN_WRITE_TIMEOUT_PATTERN;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
env DYLD_INSERT_LIBRARIES;
env DYLD_FORCE_FLAT_NAMESPACE;
$env#env LUA_PATH;
#env LUA_CPATH;

$main_config

http {
    access_log $AccLogFile;
    #access_log off;
$temp_paths
    default_type text/plain;
    keepalive_timeout  68000ms;
$extra_http_config
$http_config

    server {
        listen          $ServerPort;
        server_name     '$quoted_server_name';

        client_max_body_size 30M;
        #client_body_buffer_size 4k;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

_EOC_

    if (!$NoRootLocation) {
        $conf .= <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    }
    $conf .= "    }\n";

    if ($opts->{hup}) {
        # HUP mode: polling /ver here tells when the new config is live
        $conf .= <<_EOC_;

    server {
        listen          $ServerPort;
        server_name     'Test-Nginx';

        location = /ver {
            return 200 '$ConfigVersion';
        }
    }
_EOC_
    }

    $conf .= <<_EOC_;
}

$post_main_config

#timer_resolution 100ms;

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
_EOC_
    $conf .= "    use $EventType;\n" if $EventType;
    $conf .= "}\n";
    $conf .= <<_EOC_;
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
_EOC_

    if (defined $WorkerUser) {
        $conf .= "user $WorkerUser;\n";
    } elsif ($> == 0) {
        # as root, nginx would switch its workers to "nobody"
        $conf .= "user root;\n";
    }

    open my $out, '>', $ConfFile or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out $conf;
    close $out;
}

# ---------------------------------------------------------------------------
# Test driver
# ---------------------------------------------------------------------------

sub run_tests () {
    bail_out("Cannot find the nginx executable \"$NginxBinary\" "
             . "(set TEST_NGINX_BINARY)") unless can_run($NginxBinary);
    $NginxVersion = get_nginx_version();

    # always the port nginx really listens on (TEST_NGINX_RANDOMIZE included)
    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;

    if ($CheckLeak && !$CheckLeakNoted++) {
        Test::More::diag("check_leak skipped: TEST_NGINX_CHECK_LEAK is not "
                         . "supported by this runner; running normally");
    }

    for my $block (Test::Base::blocks()) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value("name", $0 . " " . $block->name);
        run_test($block);
        $PrevBlock = $block;
    }

    finish();
}

# Stop nginx after the last block and check that block's shutdown log.
sub finish () {
    cleanup();
    return if $InSubprocess;

    my $name = $PrevBlock ? $PrevBlock->name : "$0 END";
    if (!$ENV{TEST_NGINX_NO_CLEAN} || $ChildPid) {
        stop_nginx($name);
    }
    check_prev_block_shutdown_error_log();
    undef $PrevBlock;    # checked: END must not check it again
}

# Kill helper processes (embedded TCP server) and run cleanup handlers.
sub cleanup () {
    $_->() for @CleanupHandlers;
    @CleanupHandlers = ();
    stop_tcp_server($TcpServer) if $TcpServer;
    undef $TcpServer;
}

END {
    return if $InSubprocess;
    local $?;    # keep the exit status Test::Builder computed
    if ($BailedOut) {
        # no more test output after "Bail out!"; just do not leave nginx behind
        my $pid = nginx_pid();
        kill SIGKILL, $pid if defined $pid && !$ENV{TEST_NGINX_NO_CLEAN};
    } elsif ($PrevBlock || defined $ChildPid || -f $PidFile) {
        eval { finish() };
    }
    if ($Randomize && -d $ServRoot && $ServRoot =~ m{/t/servroot_\d+$}) {
        remove_tree($ServRoot);
    }
}

sub check_unsupported_sections ($) {
    my $block = shift;
    for my $sec (@UnsupportedSections) {
        if (defined $block->$sec) {
            bail_out($block->name . " - section \"--- $sec\" is not supported by "
                     . "this Test::Nginx::Socket (see nginx-craft.md §1.6)");
        }
    }
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;

    my $name = $block->name;
    check_unsupported_sections($block);

    my $first_time = $FirstTime;
    $FirstTime = 0;

    my $rand_ports = {};
    my $config = expand_env_in_text($block->config, $name, $rand_ports);
    for my $sec (@ExpandedSections) {
        my $v = $block->$sec;
        $block->set_value($sec, expand_env($v, $name, $rand_ports)) if defined $v;
    }

    local $LogLevel = $block->log_level || $LogLevel;

    my $must_die = $block->must_die;
    # must_die: plain start, nginx is expected to fail anyway
    my $valgrind = defined $must_die ? undef : $UseValgrind;
    my $hup      = defined $must_die ? undef : $UseHup;

    my ($should_restart, $should_reconfig) = (1, 1);
    if (!defined $config) {
        # no config: keep the running nginx (as the real runner does)
        if (!$NoNginxManager && !defined $PrevConfig) {
            bail_out("$name - No '--- config' section specified and could "
                     . "not get previous one.");
        }
        ($should_restart, $should_reconfig) = (0, 0);
    } else {
        $should_reconfig = !defined $PrevConfig || $config ne $PrevConfig;
        $should_restart = $should_reconfig || $ForceRestartOnTest;
    }

    my ($should_skip, $tests_to_skip);
    if (defined(my $skip_eval = $block->skip_eval)) {
        if ($skip_eval =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            $tests_to_skip = $1;
            $should_skip = eval $2;
            bail_out("$name - skip_eval - failed to eval the Perl code "
                     . "\"$2\": $@") if $@;
        }
    }

    if (!$NoNginxManager && !$should_skip && $should_restart) {
        $ConfigVersion = gen_rand_str(10) if $hup;
        $PrevConfig = $config if $should_reconfig;

        my $opts = {
            daemon => $valgrind ? 'off' : 'on',
            master => $hup ? 'on' : $MasterProcessEnabled,
            hup    => $hup,
        };

        my $pid = nginx_pid();
        if (defined $pid && $hup && !$first_time) {
            reload_nginx($block, $pid, $config, $opts, $first_time);
        } else {
            my $prev_name = $PrevBlock ? $PrevBlock->name : $name;
            stop_nginx($prev_name) if defined $pid || defined $ChildPid;
            check_prev_block_shutdown_error_log();

            setup_server_root($first_time, 0);
            write_user_files($block);
            write_config_file($block, $config, $opts);

            if (defined $must_die) {
                run_must_die($block, $must_die);
                return;
            }
            start_nginx($name, $valgrind);
        }
    }

    # Requests: the block runs repeat_each times against the same nginx.
    $ErrLogPos = 0;
    for my $i (0 .. $RepeatEach - 1) {
        $TcpServer = defined $block->tcp_listen ? start_tcp_server($block) : undef;
        write_user_files($block) if $i > 0;

        if ($should_skip && defined $tests_to_skip) {
            SKIP: {
                Test::More::skip("$name - skip_eval", $tests_to_skip);
            }
        } else {
            run_test_helper($block, $i);
            run_tcp_server_tests($block, $TcpServer) if $TcpServer;
        }

        if ($TcpServer) {
            stop_tcp_server($TcpServer);
            undef $TcpServer;
        }
    }

    check_valgrind_report($name) if $valgrind;
}

# HUP mode: rewrite the config, USR1 (reopen the removed logs), HUP, then
# wait until the new config answers.
sub reload_nginx ($$$$$) {
    my ($block, $pid, $config, $opts, $first_time) = @_;
    my $name = $block->name;

    setup_server_root($first_time, 1);
    write_user_files($block);
    write_config_file($block, $config, $opts);

    verbose_warn("sending USR1 and HUP signals to $pid");
    kill SIGUSR1, $pid or warn "$name - Failed to send USR1 signal to $pid\n";
    sleep $TestNginxSleep;
    kill SIGHUP, $pid or warn "$name - Failed to send HUP signal to $pid\n";
    sleep $TestNginxSleep * 3;

    wait_config_version($name);
    check_prev_block_shutdown_error_log();
}

# Same idea as the real runner: the new config is live once /ver on the
# "Test-Nginx" server returns its version 20 times in a row (all workers).
sub wait_config_version ($) {
    my $name = shift;
    my $req = "GET /ver HTTP/1.1\r\nHost: Test-Nginx\r\nConnection: close\r\n\r\n";
    my $nsucc = 0;

    for my $try (1 .. 200) {
        my ($resp) = send_request([{ value => $req }], undef, 2, undef);
        my $ver = '';
        if (defined $resp && $resp =~ /\r\n\r\n(.*)\z/s) {
            $ver = $1;
        }
        if ($ver eq $ConfigVersion) {
            return if ++$nsucc >= 20;
            sleep $TestNginxSleep if $nsucc == 5;
            next;
        }
        $nsucc = 0;
        my $wait = ($TestNginxSleep + $TestNginxSleep * $try) * $try / 2;
        $wait = 1 if $wait > 1;
        warn "$name - waiting $wait sec for nginx to reload the configuration\n"
            if $wait > 0.5;
        sleep $wait;
    }
    Test::More::fail("$name - failed to reload configuration after 200 "
                     . "failed test requests");
}

# --- must_die: nginx must refuse to start; error_log is still checked.
sub run_must_die ($$) {
    my ($block, $must_die) = @_;
    my $name = $block->name;
    my @cmd = nginx_command();
    my $stderr = defined $block->suppress_stderr ? '/dev/null' : undef;

    $ErrLogPos = 0;
    for my $i (0 .. $RepeatEach - 1) {
        my $status = run_nginx_command(\@cmd, $stderr);
        my $exit_code = $status >> 8;
        my $signal = $status & 127;

        if ($exit_code == 127) {
            Test::More::fail("$name - failed to execute the nginx command line");
        } elsif ($status & 128) {
            Test::More::fail("$name - nginx core dumped");
        } elsif ($signal) {
            Test::More::fail("$name - nginx killed by signal $signal");
        } elsif (looks_like_number($must_die)) {
            Test::More::is($must_die, $exit_code,
                           "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }

        check_error_log($block, $i);

        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; killing it (req $i)\n";
            for (1 .. 15) {
                last if -f $PidFile;
                sleep $TestNginxSleep;
            }
            stop_nginx($name);
        }
    }
}

sub check_prev_block_shutdown_error_log () {
    my $block = $PrevBlock;
    return unless $block;
    return unless defined $block->shutdown_error_log
               || defined $block->no_shutdown_error_log;

    # with HUP, nginx did not stop; NO_CLEAN leaves it running
    my $dry_run = ($UseHup || $ENV{TEST_NGINX_NO_CLEAN}) ? 1 : 0;
    check_shutdown_error_log($block, $dry_run);
}

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

# First line "METHOD [URI [PROTO]]", the rest is the body. Returns the
# parts and the sizes of what surrounds them, for build_request().
sub parse_request ($$) {
    my ($name, $raw) = @_;
    my ($first, $content) = $raw =~ /\A([^\n]*\n?)(.*)\z/s;
    bail_out("$name - Request line should be non-empty")
        if !defined $first || $first eq '';

    my @m = $first =~ /^(\s*)(\S+)( *)((\S+)( *))?((\S+)( *))?(\s*)$/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$first\".");

    my %r = (
        before_meth => length $m[0],
        meth        => $m[1],
        after_meth  => length $m[2],
        url         => $m[4] // '/',
        url_size    => defined $m[4] ? length $m[4] : 0,
        after_url   => defined $m[5] ? length $m[5] : 0,
        ver         => $m[7] // 'HTTP/1.1',
        ver_size    => defined $m[7] ? length $m[7] : 0,
        after_ver   => (defined $m[8] ? length $m[8] : 0) + length $m[9],
        content     => $content,
    );
    return \%r;
}

# Rewrite a request given as packets: normalized request line, our headers,
# trimmed body. Each edit [n, text] replaces the next n bytes of the
# concatenated packets by text; packet boundaries are kept, text going to
# the packet where its bytes were.
sub apply_edits ($$) {
    my ($packets, $edits) = @_;
    my @out = ('') x @$packets;
    my ($k, $pos) = (0, 0);

    for my $e (@$edits) {
        my ($n, $text) = @$e;
        while ($k < @$packets) {
            my $avail = length($packets->[$k]) - $pos;
            if ($n <= $avail) {
                $out[$k] .= $text;
                $pos += $n;
                last;
            }
            $out[$k] .= substr($text, 0, $avail, '') if $avail > 0;
            $n -= $avail;
            $k++;
            $pos = 0;
        }
        $out[-1] .= $text if $k >= @$packets;    # nothing left to replace
    }
    if ($k < @$packets) {
        $out[$k] .= substr($packets->[$k], $pos);
        $out[$_] .= $packets->[$_] for $k + 1 .. $#$packets;
    }
    return \@out;
}

sub build_request ($$$$$) {
    my ($name, $more_headers, $is_chunked, $conn, $packets) = @_;
    my $p = parse_request($name, join '', @$packets);
    my $content = $p->{content};
    my $content_size = length $content;

    my $len_header = '';
    if (!$is_chunked && $content ne ''
        && $more_headers !~ /(?:^|\n)Content-Length:/)
    {
        # as the real runner: the body loses its surrounding whitespace
        # (so the trailing newline left by Test::Base's trim filter)
        $content =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($content) . "\r\n";
    }

    $more_headers =~ s/(?<!\r)\n/\r\n/gs;
    my $headers = '';
    $headers .= "Host: $ServerName\r\n" if $more_headers !~ /(?:^|\n)Host:/msi;
    $headers .= "Connection: $conn\r\n" if $more_headers !~ /(?:^|\n)Connection/msi;
    $headers .= "$more_headers$len_header\r\n";

    return apply_edits($packets, [
        [$p->{before_meth}, ''],
        [length $p->{meth}, "$p->{meth} "],
        [$p->{after_meth}, ''],
        [$p->{url_size}, "$p->{url} "],
        [$p->{after_url}, ''],
        [$p->{ver_size}, "$p->{ver}\r\n"],
        [$p->{after_ver}, ''],
        [0, $headers],
        [$content_size, $content],
    ]);
}

# "--- more_headers" to header lines; also tells whether the body is chunked.
sub parse_more_headers ($) {
    my $in = shift;
    my ($out, $is_chunked) = ('', 0);
    for my $header (split /\n+/, $in) {
        next if $header =~ /^\s*\#/;
        my ($key, $val) = split /:\s*/, $header, 2;
        $val //= '';
        $is_chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

sub more_headers_for ($$$) {
    my ($name, $more_headers, $i) = @_;
    if (ref $more_headers eq 'ARRAY') {
        my $hdr = $more_headers->[$i];
        bail_out("$name - --- more_headers lacks data for the request $i")
            unless defined $hdr;
        return parse_more_headers($hdr);
    }
    return parse_more_headers($more_headers);
}

# The requests of a block: a list of connections, each a list of packets
# {value => bytes, delay_before => seconds}.
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;

    if (defined(my $raw = $block->raw_request)) {
        return [[map { +{ value => $_ } } @$raw]] if ref $raw eq 'ARRAY';
        return [[{ value => $raw }]];
    }

    my $more_headers = $block->more_headers // '';

    if (my $reqs = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $reqs eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$reqs) {
            my $conn = $i == $#$reqs ? 'close' : 'keep-alive';
            my ($hdr, $chunked) = more_headers_for($name, $more_headers, $i);
            $all .= build_request($name, $hdr, $chunked, $conn, [$reqs->[$i]])->[0];
        }
        return [[{ value => $all }]];
    }

    my $request = $block->request;
    bail_out("$name - no --- request section") unless defined $request;

    if (!ref $request) {
        # leading blank and comment lines
        1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
        my ($hdr, $chunked) = more_headers_for($name, $more_headers, 0);
        return [[{ value => build_request($name, $hdr, $chunked, 'close', [$request])->[0] }]];
    }

    bail_out("$name - invalid --- request: MUST be string or array of requests")
        unless ref $request eq 'ARRAY';

    my @list;
    for my $i (0 .. $#$request) {
        my $one = $request->[$i];
        my ($hdr, $chunked) = more_headers_for($name, $more_headers, $i);

        if (!ref $one) {
            push @list, [{ value => build_request($name, $hdr, $chunked, 'close', [$one])->[0] }];
            next;
        }
        bail_out("$name - Invalid syntax. $one should be a string or an array of packets.")
            unless ref $one eq 'ARRAY';

        # one request split in packets: strings or {value, delay_before}
        my @packets = map {
            !ref $_ ? +{ value => $_ }
            : ref $_ eq 'HASH' ? +{ %$_ }
            : bail_out("$name - Invalid syntax. $_ should be a string or hash with value.")
        } @$one;
        my $built = build_request($name, $hdr, $chunked, 'close',
                                  [map { $_->{value} } @packets]);
        $packets[$_]{value} = $built->[$_] for 0 .. $#packets;
        push @list, \@packets;
    }
    return \@list;
}

sub connect_to_server ($$) {
    my ($name, $timeout) = @_;
    my $err;
    # nginx normally listens already; retry briefly (slow starts, reloads)
    for my $try (1 .. 40) {
        my $sock = IO::Socket::INET->new(
            PeerAddr => $ServerAddr,
            PeerPort => $ServerPortForClient,
            Proto    => 'tcp',
            Timeout  => $timeout,
        );
        return $sock if $sock;
        $err = $!;
        last if !defined nginx_pid() && !$NoNginxManager;
        sleep 0.05;
    }
    return (undef, $err);
}

# Send the packets of one connection and read the response until the server
# closes. $timeout is an idle timeout: it restarts on every read or write.
# $block undef: internal request (HUP version polling), no test output.
# Returns the raw response and whether it was a HEAD request.
sub send_request ($$$$) {
    my ($packets, $middle_delay, $timeout, $block) = @_;
    my $name = $block ? $block->name : 'reload check';
    my @queue = @$packets;

    my $head_req = (join '', map { $_->{value} } @queue) =~ /^\s*HEAD\s+/ ? 1 : 0;

    my ($sock, $err) = connect_to_server($name, $timeout);
    if (!$sock) {
        return (undef, $head_req) unless $block;
        my $msg = "$name - Can't connect to $ServerAddr:$ServerPortForClient: "
                  . "$err (aborted)\n";
        bail_out($msg) if ++$TotalConnectFailures >= 3;
        Test::More::fail($msg);
        return (undef, $head_req);
    }
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';

    my $resp = '';
    my $wbuf = (shift @queue)->{value} // '';
    my $woff = 0;
    my $rsel = IO::Select->new($sock);
    my $wsel = IO::Select->new($sock);
    my $timed_out;

    while ($rsel->count || $wsel->count) {
        $! = 0;
        my ($r, $w) = IO::Select->select($rsel->count ? $rsel : undef,
                                         $wsel->count ? $wsel : undef,
                                         undef, $timeout);
        if (!$r && !$w) {
            next if $!{EINTR};
            $timed_out = 1;
            last;
        }

        if ($w && @$w) {
            WRITE: while (1) {
                if ($woff < length $wbuf) {
                    my $n = syswrite($sock, $wbuf, length($wbuf) - $woff, $woff);
                    if (!defined $n) {
                        last WRITE if $!{EAGAIN} || $!{EWOULDBLOCK};
                        # the server may still have answered (e.g. 413)
                        warn "$name - write failed: $!\n" if $block;
                        $wsel->remove($sock);
                        last WRITE;
                    }
                    $woff += $n;
                    next;
                }
                my $next = shift @queue;
                if (!$next) {
                    # all sent
                    if ($block && defined(my $shutdown = $block->shutdown)) {
                        $shutdown = 1 if $shutdown =~ /^\s*$/s;
                        shutdown($sock, $shutdown);
                    }
                    $wsel->remove($sock);
                    last WRITE;
                }
                my $delay = $next->{delay_before} // $middle_delay;
                sleep $delay if $delay;
                ($wbuf, $woff) = ($next->{value} // '', 0);
            }
        }

        if ($r && @$r) {
            while (1) {
                my $n = sysread($sock, my $buf, 16384);
                if (!defined $n) {
                    last if $!{EAGAIN} || $!{EWOULDBLOCK};
                    warn "WARNING: $name - HTTP response read failure: $!\n" if $block;
                    $n = 0;
                }
                if ($n == 0) {    # closed by the server
                    $rsel->remove($sock);
                    $wsel->remove($sock);
                    last;
                }
                $resp .= $buf;
            }
        }
    }

    close $sock;

    if ($timed_out && $block) {
        if (!defined $block->abort) {
            Test::More::fail("ERROR: client socket timed out - $name\n");
        } else {
            sleep 0.005;
        }
    }

    return ($resp, $head_req);
}

# Split one response off $raw: (HTTP::Response, raw header block, bytes
# left for the next pipelined response). The body is de-chunked.
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;

    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my $res = HTTP::Response->parse($raw);
    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        undef $code;
        $res->code(undef);
    }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $left;
    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');

    if (defined $enc && $enc eq 'chunked') {
        my $body = $res->content // '';
        my $decoded = '';
        while (1) {
            if ($body =~ /\G0[ \t]*\r\n\r\n/gc) {
                $left = $1 if $body =~ /\G(.+)/gcs;
                last;
            }
            if ($body =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
                my $size = hex $1;
                my $pos = pos $body;
                if (length($body) - $pos < $size) {
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(not enought octets for the data section)");
                    return;
                }
                $decoded .= substr $body, $pos, $size;
                pos($body) = $pos + $size;
                if ($body !~ /\G\r\n/gc) {
                    Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                    return;
                }
            } elsif ($body =~ /\G(.+)/gcs) {
                Test::More::fail("$name - invalid chunked body received: $1");
                return;
            } else {
                Test::More::fail("$name - no last chunk found - $body");
                return;
            }
        }
        $res->content($decoded);

    } elsif (defined $len && $len =~ /^\s*(\d+)\s*$/) {
        $len = $1;
        my $body = $res->content // '';
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got ", length $body, "\n" unless $head_req;
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $res->content(substr $body, 0, $len);
        }
    }

    return ($res, $raw_headers, $left);
}

# Per-request value of a check section: arrays are indexed by request.
sub get_indexed_value ($$$$) {
    my ($name, $value, $req_idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$req_idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return $value->[0] if ref $value eq 'ARRAY';
    return $value;
}

sub run_test_helper ($$) {
    my ($block, $repeated_idx) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") unless @$reqs;

    my $timeout = parse_time($block->timeout) // $Timeout;
    my ($res, $need_array, $n);
    my $req_idx = 0;

    for my $one_req (@$reqs) {
        my ($raw, $head_req) = send_request($one_req, $block->raw_request_middle_delay,
                                            $timeout, $block);
        if ($block->pipelined_requests) {
            $n = @{ $block->pipelined_requests };
            $need_array = 1;
        } else {
            $need_array = @$reqs > 1;
        }

        # one iteration per response (several when pipelined)
        while (1) {
            $raw //= '';
            verbose_warn("response: [$raw]");

            my ($raw_headers, $left);
            if (!defined $block->ignore_response) {
                ($res, $raw_headers, $left) = parse_response($name, $raw, $head_req);
            }

            if (!$n) {
                if (defined $left && $left ne '') {
                    (my $show = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                    warn "WARNING: $name - unexpected extra bytes after last "
                         . "chunk in response: \"$show\"\n";
                }
            } else {
                $raw = $left;
                $n--;
            }

            if (!defined $block->ignore_response) {
                check_error_code($block, $res, $req_idx, $need_array);
                check_raw_response_headers($block, $raw_headers, $req_idx, $need_array);
                check_response_headers($block, $res, $raw_headers, $req_idx, $need_array);
                check_response_body($block, $res, $req_idx, $repeated_idx, $need_array);
            }

            # the log is checked after every request (sliced since the last check)
            if ($n || $req_idx < @$reqs - 1) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $repeated_idx);
                check_access_log($block, $repeated_idx) unless defined $block->ignore_response;
            }

            $req_idx++;
            last unless $n;
        }
    }

    sleep $block->wait if $block->wait;
    check_error_log($block, $repeated_idx);
    check_access_log($block, $repeated_idx) unless defined $block->ignore_response;
}

# ---------------------------------------------------------------------------
# Response checks
# ---------------------------------------------------------------------------

sub check_error_code ($$$$) {
    my ($block, $res, $req_idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';

    if (defined $block->error_code_like) {
        my $val = get_indexed_value($name, $block->error_code_like, $req_idx, $need_array);
        Test::More::like($code, qr/$val/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        Test::More::is($code,
                       get_indexed_value($name, $block->error_code, $req_idx, $need_array),
                       "$name - status code ok");
    } else {
        Test::More::is($code, 200, "$name - status code ok");
    }
}

sub check_raw_response_headers ($$$$) {
    my ($block, $raw_headers, $req_idx, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->raw_response_headers_like) {
        my $expected = get_indexed_value($name, $block->raw_response_headers_like,
                                         $req_idx, $need_array);
        Test::More::like($raw_headers, qr/$expected/s, "$name - raw resp headers like");
    }
    if (defined $block->raw_response_headers_unlike) {
        my $expected = get_indexed_value($name, $block->raw_response_headers_unlike,
                                         $req_idx, $need_array);
        Test::More::unlike($raw_headers, qr/$expected/s, "$name - raw resp headers unlike");
    }
}

# "Name: value" lines; "!Name" means the header must be absent (undef).
# Returns pairs in file order.
sub parse_headers ($) {
    my $s = shift // '';
    my @pairs;
    for my $line (split /\n/, $s) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            push @pairs, [$line, undef];
        } else {
            my ($key, $val) = split /\s*:\s*/, $line, 2;
            push @pairs, [$key, $val];
        }
    }
    return \@pairs;
}

sub check_response_headers ($$$$$) {
    my ($block, $res, $raw_headers, $req_idx, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->response_headers) {
        my $pairs = parse_headers(get_indexed_value($name, $block->response_headers,
                                                    $req_idx, $need_array));
        for my $p (@$pairs) {
            my ($key, $val) = @$p;
            if (!defined $val) {
                Test::More::unlike($raw_headers // '', qr/^\s*\Q$key\E\s*:/ms,
                                   "$name - header $key not present in the raw headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            my $actual = $res ? $res->header($key) : undef;
            Test::More::is($actual // '', $val, "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $pairs = parse_headers(get_indexed_value($name, $block->response_headers_like,
                                                    $req_idx, $need_array));
        for my $p (@$pairs) {
            my ($key, $val) = @$p;
            next unless defined $val;
            my $actual = $res ? $res->header($key) : undef;
            Test::More::like($actual // '', qr/^$val$/, "$name - header $key like ok");
        }
    }
}

sub check_response_body ($$$$$) {
    my ($block, $res, $req_idx, $repeated_idx, $need_array) = @_;
    my $name = $block->name;

    my $content = $res ? $res->content : undef;
    if (defined $content) {
        # as the real runner (leftovers of old LWP-based tests)
        $content =~ s/^TE: deflate,gzip;q=0\.3\r\n//gms;
        $content =~ s/^Connection: TE, close\r\n//gms;
    }

    if (defined $block->response_body) {
        my $expected = get_indexed_value($name, $block->response_body, $req_idx, $need_array);
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        }
        my $desc = "(repeated req $repeated_idx, req $req_idx)";
        if (ref $expected) {
            Test::More::like($content, $expected, "$name - response_body - like $desc");
        } else {
            is_str($content, $expected, "$name - response_body - response is expected $desc");
        }

    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $pat = get_indexed_value($name,
            $type eq 'like' ? $block->response_body_like : $block->response_body_unlike,
            $req_idx, $need_array);
        if (!ref $pat) {
            $pat =~ s/\$ServerPort\b/$ServerPort/g;
            $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        }
        my $summary = trim($content) // '';
        my $desc = "$name - response_body_$type - response is expected ($summary)";
        if ($type eq 'like') {
            Test::More::like($content, qr/$pat/s, $desc);
        } else {
            Test::More::unlike($content, qr/$pat/s, $desc);
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $req_idx, $repeated_idx, 0);
    }
}

# ---------------------------------------------------------------------------
# Log checks
# ---------------------------------------------------------------------------

# error.log lines written since the previous check (all of it with
# check_accum_error_log).
sub error_log_data () {
    # lines of the log phase come after the server closed the connection
    sleep $TestNginxSleep * 3;

    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogPos, 0 if !$CheckAccumErrLog && $ErrLogPos > 0;
    my @lines = <$in>;
    $ErrLogPos = tell $in unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub access_log_data () {
    sleep $TestNginxSleep * 3;
    open my $in, '<', $AccLogFile or return [];
    my @lines = <$in>;
    close $in;
    return \@lines;
}

# A pattern section as a list: one literal substring per line, or the
# eval'ed qr// / array.
sub pattern_list ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats] if ref $pats eq 'ARRAY';
    return [$pats];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat eq 'Regexp' ? $line =~ $pat : index($line, $pat) >= 0;
}

# Does a pattern section mention $str (so a WARNING for it is not needed)?
sub value_contains {
    my ($val, $str) = @_;
    return 0 unless defined $val;
    return index("$val", $str) >= 0 if !ref $val || ref $val eq 'Regexp';
    if (ref $val eq 'ARRAY') {
        value_contains($_, $str) and return 1 for @$val;
    }
    return 0;
}

# --- error_log-style check: every pattern must match a line of $file.
# $req: " (req N)" or ''.
sub check_patterns_match ($$$$$) {
    my ($pats, $lines, $name, $file, $req) = @_;
    for my $pat (@{ pattern_list($pats) }) {
        next unless defined $pat;
        if (grep { line_matches($_, $pat) } @$lines) {
            Test::More::pass("$name - pattern \"$pat\" matches a line in $file$req");
        } else {
            Test::More::fail("$name - pattern \"$pat\" should match a line in $file$req");
        }
    }
}

# --- no_error_log-style check: no pattern may match; one test per pattern
# (the real runner emits one failure per matching line).
sub check_patterns_absent ($$$$$) {
    my ($pats, $lines, $name, $file, $req) = @_;
    for my $pat (@{ pattern_list($pats) }) {
        next unless defined $pat;
        my $p = fmt_str($pat);
        my @hits = grep { line_matches($lines->[$_], $pat) } 0 .. $#$lines;
        if (!@hits) {
            Test::More::pass("$name - pattern \"$p\" does not match a line in $file$req");
            next;
        }
        my $ln = fmt_str($lines->[$hits[0]]);
        my $end = $hits[0] + 9 < $#$lines ? $hits[0] + 9 : $#$lines;
        my $more = join '', @{$lines}[$hits[0] + 1 .. $end];
        Test::More::fail("$name - pattern \"$p\" should not match any line in $file "
                         . "but matches line \"$ln\"$req\n$more");
        Test::More::diag(scalar(@hits) . " matching lines in all") if @hits > 1;
    }
}

sub check_error_log ($$) {
    my ($block, $repeated_idx) = @_;
    my $name = $block->name;
    my $lines = error_log_data();
    my $req = " (req $repeated_idx)";

    # grep_error_log: the concatenated matches must equal grep_error_log_out
    my $grep_pats = $block->grep_error_log;
    if (defined $grep_pats) {
        my $grep_pat = ref $grep_pats eq 'ARRAY' ? $grep_pats->[$repeated_idx] : $grep_pats;
        if (defined $grep_pat) {
            my $expected = $block->grep_error_log_out;
            bail_out("$name - No --- grep_error_log_out defined but --- "
                     . "grep_error_log is defined") unless defined $expected;
            $expected = $expected->[$repeated_idx] if ref $expected eq 'ARRAY';

            my $matched = '';
            for my $line (@$lines) {
                my $m;
                if (ref $grep_pat) {
                    $m = $& if $line =~ $grep_pat;
                } elsif (index($line, $grep_pat) >= 0) {
                    $m = $grep_pat;
                }
                $matched .= "$m\n" if defined $m && $m !~ /\n/;
            }
            is_str($matched, $expected, "$name - grep_error_log_out (req $repeated_idx)");
        }
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but --- "
                 . "grep_error_log_out is defined");
    }

    check_patterns_match($block->error_log, $lines, $name, 'error.log', $req)
        if defined $block->error_log;
    check_patterns_absent($block->no_error_log, $lines, $name, 'error.log', $req)
        if defined $block->no_error_log;

    # Lines nobody asked about that usually mean a bug: warn, don't fail.
    for my $level (qw(alert crit emerg)) {
        next if value_contains(scalar $block->error_log, "[$level")
             || value_contains(scalar $block->no_error_log, "[$level");
        for my $line (@$lines) {
            warn "WARNING: $name - " . fmt_str($line) . "\n" if $line =~ /\[$level\]/;
        }
    }

    for my $line (@$lines) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l\n");
        }
    }
}

sub check_access_log ($$) {
    my ($block, $repeated_idx) = @_;
    return unless defined $block->access_log || defined $block->no_access_log;
    my $lines = access_log_data();
    my $req = " (req $repeated_idx)";
    check_patterns_match($block->access_log, $lines, $block->name, 'access.log', $req)
        if defined $block->access_log;
    check_patterns_absent($block->no_access_log, $lines, $block->name, 'access.log', $req)
        if defined $block->no_access_log;
}

# What nginx logged while stopping (the log since the block's last check).
sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;
    my $name = $block->name;

    if ($dry_run) {
        for my $sec (qw(shutdown_error_log no_shutdown_error_log)) {
            my $pats = $block->$sec;
            next unless defined $pats;
            for (@{ pattern_list($pats) }) {
                SKIP: { Test::More::skip("$name - $sec - tests skipped due to dry_run", 1) }
            }
        }
        return;
    }

    my $lines = error_log_data();
    check_patterns_absent($block->no_shutdown_error_log, $lines, $name, 'error.log', '')
        if defined $block->no_shutdown_error_log;
    check_patterns_match($block->shutdown_error_log, $lines, $name, 'error.log', '')
        if defined $block->shutdown_error_log;

    for my $line (@$lines) {
        if ($line =~ /\bAssertion .*? failed\.$/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l");
        }
    }
}

# ---------------------------------------------------------------------------
# Embedded TCP server (--- tcp_listen): one connection per request round
# ---------------------------------------------------------------------------

sub start_tcp_server ($) {
    my $block = shift;
    my $name = $block->name;
    my $target = $block->tcp_listen;
    my $reply = $block->tcp_reply;

    if (!defined $reply && !defined $block->tcp_shutdown) {
        bail_out("$name - no --- tcp_reply specified but --- tcp_listen is specified");
    }

    my $req_len = $block->tcp_query_len;
    my $query_file;
    if (defined $block->tcp_query || defined $req_len) {
        $req_len //= length $block->tcp_query;
        (undef, $query_file) = File::Temp::tempfile('test-nginx-tcp-query-XXXXXX',
                                                    TMPDIR => 1, OPEN => 0);
    }

    my ($sock, $err);
    for my $try (1 .. 30) {
        if ($target =~ /^\d+$/) {
            $sock = IO::Socket::INET->new(
                LocalHost => '127.0.0.1',
                LocalPort => $target,
                Proto     => 'tcp',
                ReuseAddr => 1,
                Listen    => 5,
            );
        } elsif ($target =~ m{\S+\.sock$}) {
            unlink $target if -e $target;
            $sock = IO::Socket::UNIX->new(
                Local  => $target,
                Type   => SOCK_STREAM,
                Listen => 5,
            );
        } else {
            bail_out("$name - bad tcp_listen target: $target");
        }
        last if $sock;
        $err = $!;
        last unless $err =~ /address already in use/i;
        warn "WARNING: failed to create the tcp listening socket: $err\n";
        sleep 0.2;
    }
    bail_out("$name - failed to create the tcp listening socket: $err") unless $sock;

    my $pid = fork;
    bail_out("$name - fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        $InSubprocess = 1;
        eval { serve_tcp_connection($block, $sock, $reply, $req_len, $query_file) };
        warn "$name - TCP server: $@" if $@;
        POSIX::_exit(0);    # no END blocks, no Test::Builder summary
    }

    verbose_warn("started sub-process $pid for the TCP server on $target");
    return { pid => $pid, sock => $sock, query_file => $query_file, target => $target };
}

sub write_all ($$) {
    my ($fh, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($fh, $data, length($data) - $off, $off);
        if (!defined $n) {
            next if $!{EINTR};
            warn "WARNING: tcp server failed to send reply: $!\n";
            return;
        }
        $off += $n;
    }
}

# Child process: accept one connection, read the query, reply, close.
sub serve_tcp_connection {
    my ($block, $listen, $reply, $req_len, $query_file) = @_;
    local $SIG{PIPE} = 'IGNORE';

    my $client;
    until ($client = $listen->accept) {
        sleep $TestNginxSleep;
    }

    my ($no_read, $no_write);
    if (defined(my $shutdown = $block->tcp_shutdown)) {
        sleep parse_time($block->tcp_shutdown_delay) if $block->tcp_shutdown_delay;
        $client->shutdown($shutdown);
        if ($shutdown == 0 || $shutdown == 2) {
            $no_read = 1;
        } else {
            $no_write = 1;
        }
    }

    my $buf = '';
    unless ($no_read) {
        # with tcp_query_auto_timeout: read until the peer is idle that long
        my $idle = parse_time($block->tcp_query_auto_timeout);
        my $sel = IO::Select->new($client);
        while (1) {
            last if $idle && !$sel->can_read($idle);
            my $n = sysread($client, my $chunk, 4096);
            if (!defined $n) {
                next if $!{EINTR};
                die "failed to receive: $!\n";
            }
            last if $n == 0;
            $buf .= $chunk;

            # flush what we have: the parent checks it after the response
            if ($query_file) {
                open my $out, '>', $query_file
                    or die "cannot open $query_file for writing: $!\n";
                print $out $buf;
                close $out;
            }

            next if $idle && (!$req_len || length($buf) < $req_len);
            last if !$req_len || length($buf) >= $req_len;
        }
    }

    if (my $delay = parse_time($block->tcp_reply_delay)) {
        sleep $delay;
    }

    if (!$no_write && defined $reply) {
        $reply = $reply->($buf) if ref $reply eq 'CODE';
        if (ref $reply) {
            die "bad --- tcp_reply value\n" unless ref $reply eq 'ARRAY';
            write_all($client, $_) for @$reply;
        } else {
            write_all($client, $reply);
        }
    }

    if (defined $block->tcp_no_close) {
        sleep 1 while 1;
    }

    close $client;
    close $listen;
}

sub run_tcp_server_tests ($$) {
    my ($block, $srv) = @_;
    my $name = $block->name;
    return unless $srv->{query_file};

    my $buf = '';
    if (open my $in, '<', $srv->{query_file}) {
        local $/;
        $buf = <$in> // '';
        close $in;
    }

    is_str($buf, scalar $block->tcp_query, "$name - tcp_query ok")
        if defined $block->tcp_query;
    Test::More::is(length($buf), $block->tcp_query_len, "$name - TCP query length ok")
        if defined $block->tcp_query_len;
}

sub stop_tcp_server ($) {
    my $srv = shift;
    if ($srv->{pid}) {
        # a plain Perl child: no graceful exit to wait for
        kill SIGKILL, $srv->{pid};
        waitpid($srv->{pid}, 0);
        delete $srv->{pid};
    }
    close $srv->{sock} if $srv->{sock};
    delete $srv->{sock};
    unlink $srv->{query_file} if $srv->{query_file};
    unlink $srv->{target} if $srv->{target} && $srv->{target} =~ /\.sock$/;
}

1;
__END__

=encoding utf-8

=head1 NAME

Test::Nginx::Socket - compatible subset of openresty's Test::Nginx::Socket

=head1 SYNOPSIS

    use Test::Nginx::Socket 'no_plan';

    repeat_each(2);
    run_tests();

    __DATA__

    === TEST 1: sanity
    --- config
        location = /t { return 200 "hello\n"; }
    --- request
    GET /t
    --- response_body
    hello
    --- no_error_log
    [error]

=head1 DESCRIPTION

See F<shared/notes/nginx-craft.md> §1.6 for the supported sections,
functions and environment variables. Differences from the real module:

=over

=item * blocks are never shuffled;

=item * valgrind reports fail the block (TEST_NGINX_VALGRIND_FAIL=0: print only);

=item * a stop that needs SIGKILL fails a test;

=item * --- no_error_log emits one test per pattern, not one per matching line;

=item * --- no_shutdown_error_log is checked even without --- shutdown_error_log;

=item * TEST_NGINX_CHECK_LEAK only prints a note; sections of the real module
outside the subset (stap, http2, curl, udp, skip_nginx, init...) bail out.

=back

=cut
