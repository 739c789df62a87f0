//! Container records: one row per container with its image, snapshot key, configuration
//! (JSON the container crate owns) and run state. An image a container uses is never
//! deleted ([`crate::Publisher::delete_image`] refuses), so its layers stay alive.

use rusqlite::{params, Connection, OptionalExtension};

use oci::Digest;

use crate::db::{digest_col, Cached};
use crate::error::{Error, Result};
use crate::publish::Publisher;
use crate::Store;

/// The run state of a container (Docker's `State`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerState {
    /// `created`, `running`, `exited`, `dead`.
    pub status: String,
    /// PID of the container's process (or its monitor's) while running; 0 otherwise.
    pub pid: i32,
    pub exit_code: i32,
    /// RFC 3339, None until started.
    pub started_at: Option<String>,
    /// RFC 3339, None until it ended.
    pub finished_at: Option<String>,
    /// Why it could not start (empty when it did).
    pub error: String,
}

/// A container known to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// Without a leading `/`.
    pub name: String,
    pub image_id: Digest,
    /// The image as the user named it (`busybox`).
    pub image_name: String,
    /// The snapshot key of its writable layer.
    pub snapshot: String,
    /// Configuration as JSON (owned by the container crate).
    pub config: String,
    /// RFC 3339.
    pub created: String,
    pub state: ContainerState,
}

const COLUMNS: &str = "id, name, image_id, image_name, snapshot, config, created, status, pid, \
                       exit_code, started_at, finished_at, error";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ContainerRecord>> {
    let image: String = r.get(2)?;
    let rec = |image_id| -> rusqlite::Result<ContainerRecord> {
        Ok(ContainerRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            image_id,
            image_name: r.get(3)?,
            snapshot: r.get(4)?,
            config: r.get(5)?,
            created: r.get(6)?,
            state: ContainerState {
                status: r.get(7)?,
                pid: r.get(8)?,
                exit_code: r.get(9)?,
                started_at: r.get(10)?,
                finished_at: r.get(11)?,
                error: r.get(12)?,
            },
        })
    };
    Ok(match digest_col(image) {
        Ok(d) => Ok(rec(d)?),
        Err(e) => Err(e),
    })
}

fn all_on(conn: &Connection, filter: &str, arg: &str) -> Result<Vec<ContainerRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM containers {filter} ORDER BY created DESC, id");
    let mut st = conn.prepare_cached(&sql)?;
    let rows = if filter.is_empty() {
        st.query_map([], row)?
            .collect::<std::result::Result<Vec<_>, _>>()?
    } else {
        st.query_map([arg], row)?
            .collect::<std::result::Result<Vec<_>, _>>()?
    };
    rows.into_iter().collect()
}

pub(crate) fn users_of_image(conn: &Connection, image: &Digest) -> Result<Vec<ContainerRecord>> {
    all_on(conn, "WHERE image_id = ?1", &image.to_string())
}

/// A new container to record.
#[derive(Debug, Clone)]
pub struct NewContainer<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub image_id: &'a Digest,
    pub image_name: &'a str,
    pub snapshot: &'a str,
    pub config: &'a str,
}

impl Publisher<'_> {
    /// Records a container in state `created`; the image must exist and the name be free.
    pub fn add_container(&mut self, c: &NewContainer<'_>) -> Result<()> {
        if self.image(c.image_id)?.is_none() {
            return Err(Error::ImageNotFound(*c.image_id));
        }
        let taken: Option<String> = self
            .tx()
            .row("SELECT id FROM containers WHERE name = ?1", [c.name], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(id) = taken {
            return Err(Error::NameInUse {
                name: c.name.to_string(),
                id,
            });
        }
        self.tx().exec(
            "INSERT INTO containers (id, name, image_id, image_name, snapshot, config, created, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'created')",
            params![
                c.id,
                c.name,
                c.image_id.to_string(),
                c.image_name,
                c.snapshot,
                c.config,
                oci::now()
            ],
        )?;
        Ok(())
    }

    /// Containers that use an image.
    pub fn containers_using(&self, image: &Digest) -> Result<Vec<ContainerRecord>> {
        users_of_image(self.tx(), image)
    }
}

impl Store {
    /// Every container, newest first.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        all_on(&self.db.conn, "", "")
    }

    /// A container by full ID.
    pub fn container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        Ok(all_on(&self.db.conn, "WHERE id = ?1", id)?
            .into_iter()
            .next())
    }

    /// Finds a container as Docker does: exact ID, exact name (with or without `/`), then a
    /// unique ID prefix.
    pub fn find_container(&self, name_or_id: &str) -> Result<ContainerRecord> {
        let conn = &self.db.conn;
        if let Some(c) = all_on(conn, "WHERE id = ?1", name_or_id)?.pop() {
            return Ok(c);
        }
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(c) = all_on(conn, "WHERE name = ?1", name)?.pop() {
            return Ok(c);
        }
        if !name_or_id.is_empty() && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found = all_on(
                conn,
                "WHERE substr(id, 1, length(?1)) = ?1",
                &name_or_id.to_ascii_lowercase(),
            )?;
            if found.len() > 1 {
                return Err(Error::AmbiguousContainer(name_or_id.to_string()));
            }
            if let Some(c) = found.pop() {
                return Ok(c);
            }
        }
        Err(Error::ContainerNotFound(name_or_id.to_string()))
    }

    /// Containers that use an image.
    pub fn containers_using(&self, image: &Digest) -> Result<Vec<ContainerRecord>> {
        users_of_image(&self.db.conn, image)
    }

    /// Records a container's new run state.
    pub fn set_container_state(&self, id: &str, s: &ContainerState) -> Result<()> {
        let n = self.db.conn.exec(
            "UPDATE containers SET status = ?2, pid = ?3, exit_code = ?4, started_at = ?5,
             finished_at = ?6, error = ?7 WHERE id = ?1",
            params![
                id,
                s.status,
                s.pid,
                s.exit_code,
                s.started_at,
                s.finished_at,
                s.error
            ],
        )?;
        if n == 0 {
            return Err(Error::ContainerNotFound(id.to_string()));
        }
        Ok(())
    }

    /// Replaces a container's configuration JSON.
    pub fn set_container_config(&self, id: &str, config: &str) -> Result<()> {
        self.db.conn.exec(
            "UPDATE containers SET config = ?2 WHERE id = ?1",
            params![id, config],
        )?;
        Ok(())
    }

    /// Renames a container; the new name must be free.
    pub fn rename_container(&self, id: &str, name: &str) -> Result<()> {
        let taken: Option<String> = self
            .db
            .conn
            .row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(other) = taken {
            return Err(Error::NameInUse {
                name: name.to_string(),
                id: other,
            });
        }
        let n = self.db.conn.exec(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        if n == 0 {
            return Err(Error::ContainerNotFound(id.to_string()));
        }
        Ok(())
    }

    /// Deletes a container's record (its snapshot is the caller's to remove first).
    pub fn delete_container(&self, id: &str) -> Result<()> {
        let n = self
            .db
            .conn
            .exec("DELETE FROM containers WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(Error::ContainerNotFound(id.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewImage;

    fn image(store: &mut Store) -> Digest {
        let mut p = store.publish().unwrap();
        let id = p
            .add_image(&NewImage {
                config: br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#,
                layers: &[],
                parent: None,
                created: "2024-01-01T00:00:00Z",
            })
            .unwrap();
        p.tag("docker.io/library/x:latest", &id).unwrap();
        p.commit().unwrap();
        id
    }

    fn add(store: &mut Store, id: &str, name: &str, img: &Digest) -> Result<()> {
        let mut p = store.publish()?;
        p.add_container(&NewContainer {
            id,
            name,
            image_id: img,
            image_name: "x",
            snapshot: id,
            config: "{}",
        })?;
        p.commit()
    }

    #[test]
    fn records_find_and_protect_their_image() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let img = image(&mut store);
        let a = "a".repeat(64);
        let b = format!("ab{}", "0".repeat(62));
        add(&mut store, &a, "one", &img).unwrap();
        add(&mut store, &b, "two", &img).unwrap();
        assert!(matches!(
            add(&mut store, &"c".repeat(64), "one", &img),
            Err(Error::NameInUse { .. })
        ));
        assert_eq!(store.find_container("one").unwrap().id, a);
        assert_eq!(store.find_container("/two").unwrap().id, b);
        assert_eq!(store.find_container("ab").unwrap().id, b);
        assert!(matches!(
            store.find_container("a"),
            Err(Error::AmbiguousContainer(_))
        ));
        assert!(matches!(
            store.find_container("zzz"),
            Err(Error::ContainerNotFound(_))
        ));
        let st = ContainerState {
            status: "exited".into(),
            exit_code: 3,
            ..Default::default()
        };
        store.set_container_state(&a, &st).unwrap();
        assert!(matches!(
            store.rename_container(&a, "two"),
            Err(Error::NameInUse { .. })
        ));
        store.rename_container(&a, "uno").unwrap();
        assert_eq!(store.find_container("uno").unwrap().id, a);
        store.rename_container(&a, "one").unwrap();
        assert_eq!(store.container(&a).unwrap().unwrap().state, st);
        // A state recorded without waiting for the disk is visible at once, and later
        // commits wait again.
        let ended = ContainerState {
            exit_code: 4,
            ..st.clone()
        };
        store
            .unsynced(|s| s.set_container_state(&a, &ended))
            .unwrap();
        assert_eq!(store.container(&a).unwrap().unwrap().state, ended);
        let level: i64 = store
            .db
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(level, 2, "FULL again");
        store.set_container_state(&a, &st).unwrap();
        // The image cannot be deleted while containers use it.
        let mut p = store.publish().unwrap();
        assert!(matches!(
            p.delete_image(&img),
            Err(Error::ImageInUse { .. })
        ));
        drop(p);
        store.delete_container(&a).unwrap();
        store.delete_container(&b).unwrap();
        assert!(store.containers().unwrap().is_empty());
        let mut p = store.publish().unwrap();
        p.delete_image(&img).unwrap();
        p.commit().unwrap();
    }
}
