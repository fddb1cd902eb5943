# The application shipped by playbooks/sidekiq.yml and sidekiq-user.yml: one Sidekiq
# job. Sidekiq loads this file (`sidekiq -r /opt/app/current/worker.rb`) and finds
# Redis through REDIS_URL, set in the environment file the playbooks write.
require "sidekiq"

# Records that it ran: sets the Redis key `marker:NAME` to the worker's process ID.
class MarkerJob
  include Sidekiq::Worker

  def perform(name)
    Sidekiq.redis { |redis| redis.set("marker:#{name}", Process.pid.to_s) }
  end
end
