//! Which vector instructions the process may use.
//!
//! Every kernel that takes a wider vector path where the CPU has one (these kernels, burn's
//! reductions, anything else that asks the standard library which features the CPU has) decides
//! on what `is_x86_feature_detected!` reports. `TUNNELBENCH_ISA=avx2` makes an AVX-512
//! machine report no AVX-512 to the whole process, so that it runs exactly the code an AVX2 + FMA
//! machine runs: a change can then be checked on both paths on one machine.
//!
//! The standard library reads the CPU's features once, with the `cpuid` instruction, and keeps
//! them for the life of the process. Before anything else asks, [`configure`] turns on Linux's
//! CPUID faulting for the thread (`arch_prctl(ARCH_SET_CPUID, 0)`: `cpuid` then raises SIGSEGV),
//! answers each `cpuid` of that first reading from a signal handler with the AVX-512 bits
//! cleared, and turns faulting off again. Where the CPU or hypervisor offers no CPUID faulting,
//! the switch fails with a clear error rather than running a mix of paths.

/// The environment variable that selects the instruction set.
pub const ENV: &str = "TUNNELBENCH_ISA";

/// Why [`configure`] did not apply [`ENV`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The value is not one [`configure`] takes, or this machine cannot take that path.
    Usage(String),
    /// The CPU's features were read before they could be masked: `configure` ran too late.
    TooLate(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Usage(why) | Refused::TooLate(why) => f.write_str(why),
        }
    }
}

/// Reads [`ENV`] (`auto`, the default, or `avx2`) and applies it. Must run before anything asks
/// which CPU features there are (first thing in `main`, before any thread starts).
pub fn configure() -> Result<(), Refused> {
    match std::env::var(ENV).as_deref() {
        Err(_) | Ok("auto") | Ok("") => Ok(()),
        Ok("avx2") => force_avx2(),
        Ok(other) => Err(Refused::Usage(format!("{ENV} must be `auto` or `avx2`, got `{other}`"))),
    }
}

/// The widest vector path the kernels take on this process: `avx512`, `avx2` (with FMA), or the
/// architecture's name where neither applies.
pub fn path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return "avx2";
        }
    }
    std::env::consts::ARCH
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn force_avx2() -> Result<(), Refused> {
    Err(Refused::Usage(format!(
        "{ENV}=avx2 applies to x86-64 Linux only (this is {} {})",
        std::env::consts::OS,
        std::env::consts::ARCH
    )))
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn force_avx2() -> Result<(), Refused> {
    let hidden = cpuid_fault::read_features_without_avx512();
    let has = |f: bool, name: &str| {
        if f {
            Ok(())
        } else {
            Err(Refused::Usage(format!("{ENV}=avx2: this CPU has no {name}")))
        }
    };
    has(std::is_x86_feature_detected!("avx2"), "AVX2")?;
    has(std::is_x86_feature_detected!("fma"), "FMA")?;
    if std::is_x86_feature_detected!("avx512f") {
        return Err(match hidden {
            Err(why) => Refused::Usage(format!(
                "{ENV}=avx2: this machine has AVX-512 and cannot hide it from the process ({why}); \
                 run on a machine without AVX-512 to take the AVX2 path"
            )),
            Ok(()) => Refused::TooLate(format!(
                "{ENV}=avx2: the CPU features were read before they could be masked"
            )),
        });
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod cpuid_fault {
    use std::arch::x86_64::__cpuid_count;

    const ARCH_SET_CPUID: libc::c_int = 0x1012;

    /// AVX-512 bits of `cpuid` leaf 7 (EBX, ECX, EDX of sub-leaf 0; EAX, EDX of sub-leaf 1).
    const LEAF7_EBX: u32 =
        (1 << 16) | (1 << 17) | (1 << 21) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 30) | (1 << 31);
    const LEAF7_ECX: u32 = (1 << 1) | (1 << 6) | (1 << 11) | (1 << 12) | (1 << 14);
    const LEAF7_EDX: u32 = (1 << 2) | (1 << 3) | (1 << 8) | (1 << 23);
    /// AVX512_BF16 (EAX bit 5) and AVX10 (EDX bit 19) of sub-leaf 1.
    const LEAF7_1_EAX: u32 = 1 << 5;
    const LEAF7_1_EDX: u32 = 1 << 19;

    /// Turns `cpuid` faulting on or off for this thread.
    fn set_faulting(on: bool) -> std::io::Result<()> {
        // SAFETY: a plain system call; ARCH_SET_CPUID takes 1 (cpuid allowed) or 0 (faulting).
        let r = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, libc::c_ulong::from(!on)) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Answers a faulting `cpuid` as the CPU would, less the AVX-512 bits, and steps over it.
    extern "C" fn on_segv(_: libc::c_int, _: *mut libc::siginfo_t, context: *mut libc::c_void) {
        // SAFETY: the kernel passes the interrupted thread's context; the instruction bytes at
        // its RIP are readable (they were just fetched). Only system calls and `cpuid` run here.
        unsafe {
            let regs = &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs;
            let rip = regs[libc::REG_RIP as usize] as *const u8;
            if *rip != 0x0f || *rip.add(1) != 0xa2 {
                // A real fault: let it happen again with the default action.
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                return;
            }
            let (leaf, sub) = (regs[libc::REG_RAX as usize] as u32, regs[libc::REG_RCX as usize] as u32);
            let _ = set_faulting(false);
            let mut r = __cpuid_count(leaf, sub);
            let _ = set_faulting(true);
            if leaf == 7 && sub == 0 {
                r.ebx &= !LEAF7_EBX;
                r.ecx &= !LEAF7_ECX;
                r.edx &= !LEAF7_EDX;
            } else if leaf == 7 && sub == 1 {
                r.eax &= !LEAF7_1_EAX;
                r.edx &= !LEAF7_1_EDX;
            }
            for (reg, v) in [
                (libc::REG_RAX, r.eax),
                (libc::REG_RBX, r.ebx),
                (libc::REG_RCX, r.ecx),
                (libc::REG_RDX, r.edx),
            ] {
                regs[reg as usize] = i64::from(v);
            }
            regs[libc::REG_RIP as usize] += 2;
        }
    }

    /// Has the standard library read the CPU's features with the AVX-512 bits cleared; an error
    /// says why faulting was not possible (the features are then read as they are).
    pub fn read_features_without_avx512() -> Result<(), String> {
        // SAFETY: installs a SIGSEGV handler for the duration of the first feature reading, on
        // this (the only) thread, and puts the previous one back.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_segv as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO;
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGSEGV, &action, &mut previous) != 0 {
                return Err(format!("sigaction: {}", std::io::Error::last_os_error()));
            }
            let faulting = set_faulting(true);
            // The first question fills the standard library's feature cache for the process.
            let _ = std::is_x86_feature_detected!("avx2");
            let _ = set_faulting(false);
            libc::sigaction(libc::SIGSEGV, &previous, std::ptr::null_mut());
            faulting.map_err(|e| format!("no CPUID faulting: arch_prctl(ARCH_SET_CPUID): {e}"))
        }
    }
}
