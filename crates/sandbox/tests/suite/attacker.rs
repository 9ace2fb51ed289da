//! The attacker: this test binary re-executed inside a sandbox with `SANDBOX_ATTACK` set.
//! Each attack prints `OK` when it succeeded or `ERR <errno>` when the kernel refused it.

use std::io::Write;

fn report(res: Result<(), i32>) -> ! {
    let mut out = std::io::stdout();
    match res {
        Ok(()) => writeln!(out, "\nRESULT OK").unwrap(),
        Err(e) => writeln!(out, "\nRESULT ERR {e}").unwrap(),
    }
    out.flush().unwrap();
    std::process::exit(0)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

fn arg() -> String {
    std::env::var("SANDBOX_ARG").unwrap_or_default()
}

fn tcp_connect() -> Result<(), i32> {
    std::net::TcpStream::connect(arg())
        .map(|_| ())
        .map_err(|e| e.raw_os_error().unwrap_or(-1))
}

fn loopback_self() -> Result<(), i32> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.raw_os_error().unwrap_or(-1))?;
    let addr = l.local_addr().unwrap();
    std::net::TcpStream::connect(addr)
        .map(|_| ())
        .map_err(|e| e.raw_os_error().unwrap_or(-1))
}

fn ptrace_attach() -> Result<(), i32> {
    let pid: i32 = arg().parse().unwrap();
    let rc = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) };
    if rc == 0 { Ok(()) } else { Err(errno()) }
}

fn process_vm_read() -> Result<(), i32> {
    let pid: i32 = arg().parse().unwrap();
    let mut buf = [0u8; 8];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: 0x400000 as *mut libc::c_void,
        iov_len: 8,
    };
    let rc = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if rc >= 0 { Ok(()) } else { Err(errno()) }
}

fn signal() -> Result<(), i32> {
    let pid: i32 = arg().parse().unwrap();
    let rc = unsafe { libc::kill(pid, 0) };
    if rc == 0 { Ok(()) } else { Err(errno()) }
}

fn io_uring() -> Result<(), i32> {
    let mut params = [0u8; 120];
    let rc = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if rc >= 0 { Ok(()) } else { Err(errno()) }
}

/// Forks up to 200 children that block; prints how many forks succeeded.
fn fork_bomb() -> Result<(), i32> {
    let mut pids = Vec::new();
    let mut last_err = 0;
    for _ in 0..200 {
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::pause() };
            unsafe { libc::_exit(0) };
        }
        if pid < 0 {
            last_err = errno();
            break;
        }
        pids.push(pid);
    }
    println!("\nFORKED {}", pids.len());
    for pid in &pids {
        unsafe { libc::kill(*pid, libc::SIGKILL) };
        unsafe { libc::waitpid(*pid, std::ptr::null_mut(), 0) };
    }
    if last_err == 0 { Ok(()) } else { Err(last_err) }
}

/// Allocates and touches 512 MiB.
fn memory_hog() -> Result<(), i32> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..512 {
        let mut v = vec![0u8; 1 << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        chunks.push(v);
    }
    println!("\nALLOCATED {}", chunks.len());
    Ok(())
}

fn spin() -> Result<(), i32> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// Not a test: the entry point of the attacker when re-executed by a test.
#[test]
fn attacker_entry() {
    let Ok(attack) = std::env::var("SANDBOX_ATTACK") else {
        return;
    };
    let res = match attack.as_str() {
        "tcp-connect" => tcp_connect(),
        "loopback-self" => loopback_self(),
        "ptrace" => ptrace_attach(),
        "process-vm-read" => process_vm_read(),
        "signal" => signal(),
        "io-uring" => io_uring(),
        "fork-bomb" => fork_bomb(),
        "memory-hog" => memory_hog(),
        "spin" => spin(),
        other => panic!("unknown attack {other}"),
    };
    report(res)
}
