//! A producer that holds its file open while it writes, with a pause: the first half of SOURCE
//! into TARGET, a pause of PAUSE_MS with the file still open, then the rest, then close. Used by
//! `tests/it/wine.rs`, built for Windows and run under Wine, so that the writer is a Windows
//! process whose open handle deltadrop.exe must see (a sharing violation), not a Linux one.
//!
//!   hold_open TARGET SOURCE PAUSE_MS

use std::io::Write;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, target, source, pause] = args.as_slice() else {
        eprintln!("usage: hold_open TARGET SOURCE PAUSE_MS");
        std::process::exit(2);
    };
    let data = std::fs::read(source)?;
    let pause = Duration::from_millis(pause.parse().unwrap_or(2000));
    let (first, rest) = data.split_at(data.len() / 2);
    let mut f = std::fs::File::create(target)?;
    f.write_all(first)?;
    f.flush()?;
    eprintln!(
        "hold_open: wrote {} of {} bytes, holding",
        first.len(),
        data.len()
    );
    std::thread::sleep(pause);
    f.write_all(rest)?;
    eprintln!("hold_open: done");
    Ok(())
}
