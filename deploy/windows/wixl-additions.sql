-- wixl-additions.sql: rows build-msi.sh adds to the MSI wixl builds, with msibuild, one query
-- per line. They are what the full WiX toolset writes from markup in firstline-agent.wxs that
-- wixl ignores (Secure, Hidden, NeverOverwrite, Permanent) or does not know (the
-- ServiceConfig, ServiceConfigFailureActions and Permission elements guarded there).
--
-- The enrollment properties reach the elevated install; the token stays out of the log.
UPDATE `Property` SET `Value` = 'WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;COLLECTOR_URL;ENROLL_TOKEN;CA_FILE' WHERE `Property` = 'SecureCustomProperties'
INSERT INTO `Property` (`Property`, `Value`) VALUES ('MsiHiddenProperties', 'ENROLL_TOKEN')
-- The config's component: Win64 (256) + Permanent (16) + NeverOverwrite (128).
UPDATE `Component` SET `Attributes` = 400 WHERE `Component` = 'AgentConfig'
-- Failure actions on install and reinstall (events 1 + 4): restart after 5 s, 5 s, 60 s; the
-- count resets after a day.
CREATE TABLE `MsiServiceConfigFailureActions` (`MsiServiceConfigFailureActions` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL LOCALIZABLE, `Event` SHORT NOT NULL, `ResetPeriod` LONG, `RebootMessage` CHAR(255) LOCALIZABLE, `Command` CHAR(255) LOCALIZABLE, `Actions` CHAR(255), `DelayActions` CHAR(255), `Component_` CHAR(72) NOT NULL PRIMARY KEY `MsiServiceConfigFailureActions`)
INSERT INTO `MsiServiceConfigFailureActions` (`MsiServiceConfigFailureActions`, `Name`, `Event`, `ResetPeriod`, `Actions`, `DelayActions`, `Component_`) VALUES ('AgentRestart', 'FirstlineAgent', 5, 86400, '1[~]1[~]1', '5000[~]5000[~]60000', 'AgentExe')
-- Also when the service stops itself with a non-zero exit code (SERVICE_CONFIG_FAILURE_ACTIONS_FLAG = 4).
CREATE TABLE `MsiServiceConfig` (`MsiServiceConfig` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL LOCALIZABLE, `Event` SHORT NOT NULL, `ConfigType` LONG NOT NULL, `Argument` CHAR(255), `Component_` CHAR(72) NOT NULL PRIMARY KEY `MsiServiceConfig`)
INSERT INTO `MsiServiceConfig` (`MsiServiceConfig`, `Name`, `Event`, `ConfigType`, `Argument`, `Component_`) VALUES ('AgentFailureFlag', 'FirstlineAgent', 5, 4, '1', 'AgentExe')
INSERT INTO `InstallExecuteSequence` (`Action`, `Condition`, `Sequence`) VALUES ('MsiConfigureServices', 'VersionNT >= 600', 5850)
-- ProgramData\Firstline: SYSTEM and Administrators only (GENERIC_ALL); the state folder
-- under it holds the agent's private key.
CREATE TABLE `LockPermissions` (`LockObject` CHAR(72) NOT NULL, `Table` CHAR(32) NOT NULL, `Domain` CHAR(255), `User` CHAR(255) NOT NULL, `Permission` LONG PRIMARY KEY `LockObject`, `Table`, `Domain`, `User`)
INSERT INTO `CreateFolder` (`Directory_`, `Component_`) VALUES ('DATADIR', 'AgentConfig')
INSERT INTO `LockPermissions` (`LockObject`, `Table`, `User`, `Permission`) VALUES ('DATADIR', 'CreateFolder', 'SYSTEM', 268435456)
INSERT INTO `LockPermissions` (`LockObject`, `Table`, `User`, `Permission`) VALUES ('DATADIR', 'CreateFolder', 'Administrators', 268435456)
