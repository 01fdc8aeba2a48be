//! The terminal, owned for the dashboard's lifetime: raw mode and the
//! alternate screen on entry, both undone on drop — and by a panic hook, so a
//! panic's message lands on a usable terminal too.

use std::{
    io::{stdout, Stdout},
    mem::ManuallyDrop,
};

use crossterm::{
    cursor, execute,
    terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{backend::CrosstermBackend, Terminal};

pub struct TermGuard {
    /// Dropped by hand: ratatui's own drop prints "Failed to show the
    /// cursor" when the terminal is gone (its window closed), over
    /// whatever muxtrace says last.
    pub terminal: ManuallyDrop<Terminal<CrosstermBackend<Stdout>>>,
}

/// Undoes what [`TermGuard::enter`] did; safe to call twice.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, cursor::Show);
}

impl TermGuard {
    pub fn enter() -> std::io::Result<TermGuard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        if let Err(e) = execute!(stdout(), EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e);
        }
        let terminal = match Terminal::new(CrosstermBackend::new(stdout())) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        Ok(TermGuard {
            terminal: ManuallyDrop::new(terminal),
        })
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        // Shown, the cursor leaves ratatui's drop nothing to do; on a
        // terminal that is gone it cannot be, and the terminal is left
        // undropped (a buffer, at exit) rather than complain.
        if self.terminal.show_cursor().is_ok() {
            // SAFETY: dropped once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.terminal) };
        }
        restore();
    }
}
