<?php
/*
 * hako: WordPress settings from the container's environment. Debian's
 * /usr/share/wordpress/wp-config.php loads this file for every host name.
 *
 *   DB_NAME, DB_USER, DB_PASSWORD, DB_SOCKET   set by `hako app create --database`
 *   WP_SALT                  optional: keys and salts derive from it (else from the DB secret)
 *   WP_HTTP_BLOCK_EXTERNAL=1 optional: no outgoing HTTP (hosts without internet)
 *   WP_DEBUG=1               optional
 */
define('DB_NAME', getenv('DB_NAME') ?: 'wordpress');
define('DB_USER', getenv('DB_USER') ?: 'wordpress');
define('DB_PASSWORD', getenv('DB_PASSWORD') ?: '');
define('DB_HOST', getenv('DB_SOCKET') ? 'localhost:' . getenv('DB_SOCKET') : (getenv('DB_HOST') ?: 'localhost'));
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');

/* Keys and salts: stable for the site across instances, secret as its database password. */
$hako_salt = getenv('WP_SALT') ?: ('hako:' . getenv('DB_NAME') . ':' . getenv('DB_PASSWORD'));
foreach (array('AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
               'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT') as $hako_key) {
    define($hako_key, hash('sha256', $hako_key . '|' . $hako_salt));
}
unset($hako_salt, $hako_key);

/* The code is the image's, read-only: updates and plugin installs come with a new image. */
define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');
define('DISALLOW_FILE_MODS', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_HTTP_BLOCK_EXTERNAL', getenv('WP_HTTP_BLOCK_EXTERNAL') === '1');
define('WP_DEBUG', getenv('WP_DEBUG') === '1');
define('FS_METHOD', 'direct');
